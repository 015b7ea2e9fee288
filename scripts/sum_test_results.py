#!/usr/bin/env python3
"""Prints one closing line for all suites: `tests: N passed, N failed, N skipped`.

Reads vitest's JSON report and pytest's JUnit XML. A missing report counts as a failure, so a
suite that crashed before reporting cannot pass silently.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(vitest_json: str, pytest_xml: str) -> int:
    passed = failed = skipped = 0
    missing = []
    if Path(vitest_json).is_file():
        report = json.loads(Path(vitest_json).read_text())
        passed += report["numPassedTests"]
        failed += report["numFailedTests"]
        skipped += report["numPendingTests"] + report.get("numTodoTests", 0)
    else:
        missing.append(vitest_json)
    if Path(pytest_xml).is_file():
        root = ET.parse(pytest_xml).getroot()
        for suite in root.iter("testsuite"):
            total = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += total - bad - skip
            failed += bad
            skipped += skip
    else:
        missing.append(pytest_xml)
    for path in missing:
        print(f"missing test report: {path}", file=sys.stderr)
    print(f"tests: {passed} passed, {failed + len(missing)} failed, {skipped} skipped")
    return 1 if failed or missing or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

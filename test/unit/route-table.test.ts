import { describe, expect, it } from 'vitest';
import type { Operation } from '../../gateway/src/dialects/operation.ts';
import { SHARED_PATHS } from '../../gateway/src/dialects/shared-paths.ts';
import { OPERATIONS, routes } from '../../gateway/src/http/route-table.ts';

const op = (path: string, tag: Operation['tag']): Operation => ({ method: 'post', path, tag, summary: tag, handle: () => tag });

describe('the route table', () => {
  it('has a rule for every shared path, each picking a dialect that serves it, and no rule for a path that is not shared', () => {
    const shared = routes().filter((r) => r.operations.length > 1);
    expect(shared.map((r) => r.path).sort()).toEqual(Object.keys(SHARED_PATHS).sort());
    const bodies = [{}, { input: 'x', model: 'm' }, { content: 'x' }, { inputs: 'x' }, { texts: ['x'], query: 'q' }, { raw_scores: true }];
    for (const route of shared) {
      const picked = new Set(bodies.map((body) => SHARED_PATHS[route.path]!.pick(body)));
      // Every dialect on the path is reachable, and every pick is one of them.
      expect([...picked].sort(), route.path).toEqual(route.operations.map((o) => o.tag).sort());
    }
  });

  it('refuses a path two dialects serve without a rule, and one a dialect registers twice', () => {
    expect(() => routes([op('/x', 'TEI'), op('/x', 'Cohere')])).toThrow('POST /x is served by TEI and Cohere with no rule in SHARED_PATHS');
    expect(() => routes([op('/rerank', 'TEI'), op('/rerank', 'TEI')])).toThrow('POST /rerank is registered twice by TEI, TEI');
    expect(routes([op('/rerank', 'TEI'), op('/rerank', 'Cohere')])).toHaveLength(1);
  });

  it('lists every operation once', () => {
    const keys = OPERATIONS.map((o) => `${o.method} ${o.path} ${o.tag}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

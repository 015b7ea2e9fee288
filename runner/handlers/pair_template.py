"""How a tokenizer lays out a (query, document) pair, learned from the tokenizer itself.

Transformers 5 dropped the id-level prepare_for_model, and tokenising each pair as text would
tokenise the query once per document. Encoding one sample pair reveals the special tokens
before, between and after the two sequences (and their token type ids), after which any pair
can be assembled from ids: the query is tokenised once per request, and only the document side
is cut to fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class PairTemplate:
    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    # Token type ids for the first and the second segment; None if the model takes none.
    types: tuple[int, int] | None

    @property
    def specials(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def infer(cls, tokenizer) -> "PairTemplate":
        a = tokenizer("a", add_special_tokens=False)["input_ids"]
        b = tokenizer("b", add_special_tokens=False)["input_ids"]
        enc = tokenizer("a", "b")
        ids = enc["input_ids"]
        for start in range(len(ids) - len(a) + 1):
            if ids[start:start + len(a)] != a:
                continue
            after = start + len(a)
            for mid_end in range(after, len(ids) - len(b) + 1):
                if ids[mid_end:mid_end + len(b)] == b:
                    types = enc.get("token_type_ids")
                    return cls(
                        prefix=ids[:start],
                        middle=ids[after:mid_end],
                        suffix=ids[mid_end + len(b):],
                        types=(types[start], types[mid_end]) if types is not None else None,
                    )
        raise ConfigError("cannot work out how this tokenizer joins a pair of texts")

    def join(self, first: list[int], second: list[int]) -> tuple[list[int], list[int] | None]:
        """The pair's ids, and its token type ids when the model uses them."""
        head = self.prefix + first + self.middle
        ids = head + second + self.suffix
        if self.types is None:
            return ids, None
        return ids, [self.types[0]] * len(head) + [self.types[1]] * (len(second) + len(self.suffix))

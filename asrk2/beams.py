"""The beams of k2's pruned intersection, one dataclass for every search.

Offline decoding (``k2.intersect_dense_pruned``), streaming
(``k2.OnlineDenseIntersecter``) and the pruned LF-MMI denominator take the
same four options; each of those configs is, or holds, a :class:`SearchBeams`,
so a beam has one definition and one default.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict

__all__ = ["SearchBeams", "GREEDY_BEAMS"]


@dataclass
class SearchBeams:
    """Pruning of a k2 search.

    Attributes:
      search_beam: decoding beam, e.g. 20; smaller is faster, larger more exact.
      output_beam: beam that prunes the output lattice (Kaldi's lattice-beam).
      min_active_states: fewest FSA states kept active per frame.
      max_active_states: most FSA states kept active per frame.
    """

    search_beam: float = 20.0
    output_beam: float = 8.0
    min_active_states: int = 30
    max_active_states: int = 10000

    def __post_init__(self) -> None:
        if self.search_beam <= 0 or self.output_beam <= 0:
            raise ValueError(
                f"beams must be > 0, got search_beam {self.search_beam}, "
                f"output_beam {self.output_beam}"
            )
        if not 0 <= self.min_active_states <= self.max_active_states:
            raise ValueError(
                "need 0 <= min_active_states <= max_active_states, got "
                f"{self.min_active_states}, {self.max_active_states}"
            )

    def beams(self) -> "SearchBeams":
        """Just the beams (of a config that extends this class)."""
        return SearchBeams(**self.kwargs())

    def kwargs(self) -> Dict[str, Any]:
        """The four options as keyword arguments of k2's intersections."""
        names = [f.name for f in dataclasses.fields(SearchBeams)]
        return {name: getattr(self, name) for name in names}


# For ctc-greedy with H: the best partial path is the best state on every
# frame, so even these beams keep it (see asrk2.decode.ctc_decode).
GREEDY_BEAMS = SearchBeams(
    search_beam=2.0, output_beam=1.0, min_active_states=1, max_active_states=10
)

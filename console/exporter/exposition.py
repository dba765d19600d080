"""The /metrics body, reusing the rendered text of each backend's snapshot until its next poll.

Most of a scrape's cost is prometheus_client formatting the samples of the resource families
(18 per container), and those only change when their backend is polled again. A snapshot is
immutable, so the text prometheus_client rendered for it is kept, per family and per
exposition format, and reused by every scrape until the poller publishes that backend's next
snapshot (the entry holds the snapshot itself and is used only while it `is` the backend's
current one). The rest — workloads, backends, Swarm, control loops, build, scrape duration
and the process' own metrics — is collected and rendered at every scrape. A backend's text
is rendered on the first scrape after its poll, never ahead, so polls between scrapes cost
nothing here. Then its families are built again, but a series whose value did not move
keeps the line it had (most of a container's 18: its info, limit, start time, state and
health sets, idle counters); prometheus_client formats the others, in one go per family.

The result is byte for byte what prometheus_client renders from the collector's families in
one go: families keep their order, each family's samples come backend after backend in the
configured order, and a family with no sample is left out. Two backends of one kind that
report the same series (a repeated label set would make the scrape invalid) make that kind
rendered in one go instead, which drops the repeats as the collector does.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from backends.records import KindSnapshot
from console.exporter.collector import RtmCollector, is_up
from console.poller import BackendState, PollState
from console.resource_kinds import KINDS, ResourceKind

Encoder = Callable[[Collector], bytes]  # prometheus_client's generate_latest of one format
EOF_LINE = "# EOF\n"  # OpenMetrics' last line
FORMATS_KEPT = 4  # content types with texts kept (the Accept header picks versions and escaping)
PLAIN = (None,) * (len(Sample._fields) - 3)  # a sample's timestamp, exemplar (, native histogram) when unset


class _Families:
    """Families in the shape an encoder reads (anything with `collect()`)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> list[Metric]:
        return self.families


SeriesKey = tuple[str, ...]  # (sample name, *label values)


@dataclass(frozen=True)
class FamilyText:
    header: str  # the # HELP / # TYPE (/ # UNIT) lines
    samples: str  # the sample lines, "" when the family has none
    lines: Mapping[SeriesKey, tuple[float, str]]  # every series' value and line, for the next poll's render


@dataclass(frozen=True)
class SnapshotText:
    """One backend snapshot's families of one kind as one format renders them."""

    snapshot: KindSnapshot
    families: tuple[tuple[str, FamilyText], ...]  # family name -> text, in the collector's order
    series: frozenset[SeriesKey]  # to find a series two backends both report


def render_family(family: Metric, encoder: Encoder, previous: FamilyText | None = None) -> FamilyText:
    """`family` rendered by `encoder`, split into its header and its sample lines. A series
    whose value is what it was in `previous` (the same family of the backend's last snapshot)
    keeps its line; prometheus_client renders only the others, in one go."""
    known = previous.lines if previous is not None else {}
    keys = [(sample.name, *sample.labels.values()) for sample in family.samples]
    lines: list[str | None] = []
    missing: list[Sample] = []
    for key, sample in zip(keys, family.samples):
        old = known.get(key)
        if old is not None and old[0] == sample.value and _same_line(old[0], sample):
            lines.append(old[1])
        else:
            lines.append(None)
            missing.append(sample)
    header = previous.header if previous is not None else ""
    if missing or previous is None:
        partial = copy.copy(family)
        partial.samples = missing
        header, rendered = _split(encoder(_Families([partial])))
        if len(rendered) != len(missing):
            # Not one line per sample: the text format moves _created samples to a gauge of their own.
            header, rendered = _split(encoder(_Families([family])))
            return FamilyText(header, "".join(rendered), dict.fromkeys(keys, (math.nan, "")))
        fresh = iter(rendered)
        lines = [line if line is not None else next(fresh) for line in lines]
    values = (sample.value if sample[3:] == PLAIN else math.nan for sample in family.samples)  # NaN: never reused
    return FamilyText(header, "".join(lines), dict(zip(keys, zip(values, lines))))  # type: ignore[arg-type]


def _same_line(known: float, sample: Sample) -> bool:
    """A sample of value `known` renders as this one: no timestamp, exemplar or native
    histogram, and (0.0 == -0.0) the same sign of zero."""
    return sample[3:] == PLAIN and (known != 0 or math.copysign(1.0, known) == math.copysign(1.0, sample.value))


def _split(body: bytes) -> tuple[str, list[str]]:
    """An encoder's text of one family -> (its header lines, its sample lines)."""
    text = body.decode().removesuffix(EOF_LINE)
    end = 0
    while text.startswith("#", end):
        end = text.index("\n", end) + 1
    return text[:end], [line + "\n" for line in text[end:].split("\n")[:-1]]


class RtmRegistry(CollectorRegistry):
    """The exporter's registry: its rtm collector, then what else registers (the process
    collector). `generate_latest(registry)` renders everything afresh, as any registry;
    `exposition()` is what /metrics serves, reusing snapshot texts."""

    def __init__(self, rtm: RtmCollector) -> None:
        super().__init__(auto_describe=False)
        self.rtm = rtm
        self.others: list[Collector] = []
        self._texts: dict[str, dict[tuple[str, str], SnapshotText]] = {}  # content type -> (backend, kind) -> text
        self._verdicts: dict[tuple[str, str], tuple[tuple[SnapshotText, ...], bool]] = {}  # (content type, kind) -> (texts, verdict)
        self._lock = threading.Lock()
        self.register(rtm)

    def register(self, collector: Collector) -> None:
        super().register(collector)
        if collector is not getattr(self, "rtm", None):
            self.others.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        if collector in self.others:
            self.others.remove(collector)

    def exposition(self, encoder: Encoder, content_type: str) -> bytes:
        """The body of one scrape in the format of `encoder` (whose content type is `content_type`)."""
        began = time.perf_counter()
        state = self.rtm.source.latest()
        with self._lock:
            kinds_text = self._kinds_text(state, encoder, content_type)
        live = [*self.rtm.live_families(state, began), *(family for collector in self.others for family in collector.collect())]
        return kinds_text.encode() + encoder(_Families(live))

    def _kinds_text(self, state: PollState, encoder: Encoder, content_type: str) -> str:
        kept = self._texts.pop(content_type, {})
        current: dict[tuple[str, str], SnapshotText] = {}
        parts: list[str] = []
        backends = [backend for backend in state.backends.values() if is_up(backend)]
        for kind in KINDS:
            texts = [self._snapshot_text(backend, kind, encoder, kept, current) for backend in backends]
            texts = [text for text in texts if text.families]
            if self._repeats_a_series((content_type, kind.name), texts):
                families = self.rtm.kind_families(kind, (item for text in texts for item in text.snapshot.items))
                parts += [encoder(_Families([family])).decode().removesuffix(EOF_LINE) for family in families if family.samples]
            else:
                parts += _joined(texts)
        self._texts[content_type] = current
        while len(self._texts) > FORMATS_KEPT:
            dropped = next(iter(self._texts))
            del self._texts[dropped]
            self._verdicts = {key: value for key, value in self._verdicts.items() if key[0] != dropped}
        return "".join(parts)

    def _snapshot_text(self, backend: BackendState, kind: ResourceKind, encoder: Encoder,
                       kept: dict[tuple[str, str], SnapshotText], current: dict[tuple[str, str], SnapshotText]) -> SnapshotText:
        """The text of `backend`'s current snapshot for `kind` (no family when it holds no such record)."""
        snapshot = backend.snapshot
        assert snapshot is not None  # the backend is up
        key = (backend.name, kind.name)
        text = kept.get(key)
        if text is None or text.snapshot is not snapshot:
            records = [item for item in snapshot.items if isinstance(item, kind.record)]
            families = self.rtm.kind_families(kind, records) if records else []
            previous = dict(text.families) if text is not None else {}
            rendered = tuple((family.name, render_family(family, encoder, previous.get(family.name))) for family in families)
            text = SnapshotText(snapshot, rendered, _series(family for _, family in rendered))
        current[key] = text
        return text

    def _repeats_a_series(self, key: tuple[str, str], texts: list[SnapshotText]) -> bool:
        """Whether two of `texts` share a series; the answer is kept while the texts stay."""
        checked, verdict = self._verdicts.get(key, ((), False))
        if len(checked) != len(texts) or any(a is not b for a, b in zip(checked, texts)):
            verdict = _share_a_series(texts)
            self._verdicts[key] = (tuple(texts), verdict)
        return verdict


def _series(families: Iterable[FamilyText]) -> frozenset[SeriesKey]:
    return frozenset().union(*(family.lines.keys() for family in families))


def _share_a_series(texts: Sequence[SnapshotText]) -> bool:
    if len(texts) < 2:
        return False
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        if not seen.isdisjoint(text.series):
            return True
        seen |= text.series
    return False


def _joined(texts: Sequence[SnapshotText]) -> list[str]:
    """Each family's header once, then its samples backend after backend; empty families left out."""
    if not texts:
        return []
    parts: list[str] = []
    for index, (_, first) in enumerate(texts[0].families):
        samples = "".join(text.families[index][1].samples for text in texts)
        if samples:
            parts += [first.header, samples]
    return parts

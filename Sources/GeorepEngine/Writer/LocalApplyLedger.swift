import GeorepLog
import GeorepModel
import Synchronization

/// Which of a region's own events are in its store already, shared by the node's ``Writer``
/// and ``Applier`` so that each event is merged once: the writer applies an event locally
/// unless the applier got there first, and the applier only stores the position of an event
/// the writer applied (merging it again would change nothing).
///
/// An optimization only: a position missed here (after a restart, a failed local apply, or
/// when both reach an event at once) is merged twice, which every merge rule makes harmless.
public final class LocalApplyLedger: Sendable {
    /// The most positions kept per partition; past it the partition's are dropped (an applier
    /// far behind, or one that does not consume the partition, would otherwise let them pile up).
    static let maxPerPartition = 10_000

    private struct State {
        /// Offsets the writer applied that the applier has not reached, with their events'
        /// HLCs (the applier's progress counts them without decoding the events), by partition.
        var appliedByWriter: [TopicPartition: [Int64: HLCTimestamp]] = [:]
        /// The next offset the applier has yet to commit, by partition.
        var applierNext: [TopicPartition: Int64] = [:]
    }

    private let state = Mutex(State())

    /// An empty ledger.
    public init() {}

    /// How many positions the writer applied that the applier has not reached.
    public var count: Int {
        state.withLock { $0.appliedByWriter.values.map(\.count).reduce(0, +) }
    }

    /// Whether the applier has committed the event at `position`: the writer need not apply it.
    func isAppliedByApplier(_ position: SourcePosition) -> Bool {
        state.withLock { ($0.applierNext[position.partition] ?? 0) > position.offset }
    }

    /// Records that the writer applied the event at `position`, stamped `hlc`.
    func writerApplied(_ position: SourcePosition, hlc: HLCTimestamp) {
        state.withLock { state in
            let partition = position.partition
            guard (state.applierNext[partition] ?? 0) <= position.offset else { return }
            if state.appliedByWriter[partition]?.count ?? 0 >= Self.maxPerPartition { state.appliedByWriter[partition] = nil }
            state.appliedByWriter[partition, default: [:]][position.offset] = hlc
        }
    }

    /// Which of `positions`, a batch the applier consumed, the writer applied, with their HLCs.
    func takeAppliedByWriter(_ positions: [SourcePosition]) -> [SourcePosition: HLCTimestamp] {
        state.withLock { state in
            guard !state.appliedByWriter.isEmpty else { return [:] }
            var taken: [SourcePosition: HLCTimestamp] = [:]
            for position in positions {
                if let hlc = state.appliedByWriter[position.partition]?[position.offset] { taken[position] = hlc }
            }
            return taken
        }
    }

    /// Records the applier's committed next offsets, forgetting the writer's applies below them.
    func applierCommitted(_ next: [TopicPartition: Int64]) {
        state.withLock { state in
            for (partition, offset) in next {
                state.applierNext[partition] = max(state.applierNext[partition] ?? 0, offset)
                guard let kept = state.appliedByWriter[partition]?.filter({ $0.key >= offset }) else { continue }
                state.appliedByWriter[partition] = kept.isEmpty ? nil : kept
            }
        }
    }
}

import GeorepLog
import GeorepModel

/// The source positions a batch moves its partitions to: the next offset to consume per
/// partition, never below the stored one. An event below the stored position was applied
/// before (a replay, or another applier that held the partition during a rebalance).
///
/// Both stores plan a batch with it. A batch comes in runs of one partition, so the positions
/// of the partition in hand are kept aside and looked up again only when the partition changes.
struct BatchPositions: Sendable {
    /// The positions stored before the batch.
    let stored: [TopicPartition: Int64]
    private var moved: [TopicPartition: Int64] = [:]
    /// The partition of the current run, its stored position and its next one.
    private var run: (partition: TopicPartition, stored: Int64?, next: Int64)?

    init(stored: [TopicPartition: Int64]) {
        self.stored = stored
    }

    /// The positions after the batch, for the partitions it touched.
    var next: [TopicPartition: Int64] {
        guard let run else { return moved }
        var next = moved
        next[run.partition] = max(next[run.partition] ?? 0, run.next)
        return next
    }

    /// Moves past a record that was consumed without an event (the caller dead-lettered it).
    mutating func consume(_ source: SourcePosition) {
        _ = admit(source)
    }

    /// Whether the event at `source` is to be applied; if so, moves past it.
    mutating func admit(_ source: SourcePosition) -> Bool {
        if run?.partition != source.partition {
            if let run { moved[run.partition] = max(moved[run.partition] ?? 0, run.next) }
            let position = stored[source.partition]
            run = (source.partition, position, moved[source.partition] ?? position ?? 0)
        }
        if let position = run!.stored, source.offset < position { return false }
        run!.next = max(run!.next, source.offset + 1)
        return true
    }
}

import GeorepModel

/// The source positions a batch moves its partitions to: the next offset to consume per
/// partition, never below the stored one. An event below the stored position was applied
/// before (a replay, or another applier that held the partition during a rebalance).
struct BatchPositions: Sendable {
    /// The positions stored before the batch.
    let stored: [SourcePartition: Int64]
    /// The positions after the batch, for the partitions it touched.
    private(set) var next: [SourcePartition: Int64] = [:]

    init(stored: [SourcePartition: Int64]) {
        self.stored = stored
    }

    /// Moves past a record that was consumed without an event (the caller dead-lettered it).
    mutating func consume(_ source: SourcePosition) {
        guard source.offset >= stored[source.partition] ?? 0 else { return }
        advance(past: source)
    }

    /// Whether the event at `source` is to be applied; if so, moves past it.
    mutating func admit(_ source: SourcePosition) -> Bool {
        if let position = stored[source.partition], source.offset < position { return false }
        advance(past: source)
        return true
    }

    private mutating func advance(past source: SourcePosition) {
        let partition = source.partition
        next[partition] = max(next[partition] ?? stored[partition] ?? 0, source.offset + 1)
    }
}

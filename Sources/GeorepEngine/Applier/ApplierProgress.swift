public import GeorepLog
public import GeorepModel

/// How far an ``Applier`` has got: the figures behind lag, metrics and read-your-writes.
public struct ApplierProgress: Sendable, Hashable {
    /// The next offset to apply per source partition (every offset below it is applied or
    /// dead-lettered), starting from the store's positions.
    public var appliedOffsets: [TopicPartition: Int64] = [:]
    /// The highest HLC among the events applied since start.
    public var lastAppliedHLC: HLCTimestamp = .zero
    /// Events applied since start (changed or not).
    public var eventsApplied = 0
    /// Of ``eventsApplied``, those the node's writer had applied already: only their
    /// positions were stored.
    public var eventsAppliedByWriter = 0
    /// Events skipped since start because the store had them already (expected to stay 0).
    public var eventsSkipped = 0
    /// Records sent to the dead-letter topic since start.
    public var deadLetters = 0
    /// How often Kafka reported that the applier's position fell out of the log (records lost
    /// to retention before they were applied).
    public var lostEventReports = 0
    /// The ranges of offsets that were lost to retention and never applied.
    public var lostRanges: [LostRange] = []
    /// Whether ``Applier/run()`` is consuming.
    public var isRunning = false

    /// Makes empty progress.
    public init() {}

    /// True once records were lost to retention: the store misses events, an operator must look.
    public var hasLostEvents: Bool { lostEventReports > 0 || !lostRanges.isEmpty }

    /// Whether the event at `position` is applied (or dead-lettered).
    public func isApplied(_ position: SourcePosition) -> Bool {
        (appliedOffsets[position.partition] ?? 0) > position.offset
    }
}

/// Offsets of a partition that left the log before they were applied.
public struct LostRange: Sendable, Hashable, CustomStringConvertible {
    /// The partition.
    public var partition: TopicPartition
    /// The first lost offset.
    public var from: Int64
    /// The first offset still in the log (exclusive end of the loss).
    public var upTo: Int64

    /// Makes a range.
    public init(partition: TopicPartition, from: Int64, upTo: Int64) {
        self.partition = partition
        self.from = from
        self.upTo = upTo
    }

    /// `topic[partition]@from..<upTo`.
    public var description: String { "\(partition)@\(from)..<\(upTo)" }
}

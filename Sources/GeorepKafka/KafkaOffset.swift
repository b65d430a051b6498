public import GeorepLog

/// A position in a partition: a record offset, or one of Kafka's logical positions.
public struct KafkaOffset: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The offset, or a negative logical position.
    public let rawValue: Int64
    /// Wraps an offset or logical position.
    public init(rawValue: Int64) { self.rawValue = rawValue }
    /// The record at `offset`.
    public init(_ offset: Int64) { self.rawValue = offset }

    /// The oldest record still in the partition.
    public static let beginning = KafkaOffset(rawValue: -2)
    /// The end of the partition: records produced from now on.
    public static let end = KafkaOffset(rawValue: -1)
    /// The group's committed offset (falling back to `auto.offset.reset`).
    public static let stored = KafkaOffset(rawValue: -1000)
    /// No offset (for example: nothing committed).
    public static let invalid = KafkaOffset(rawValue: -1001)

    /// True for a real record offset, false for a logical position.
    public var isConcrete: Bool { rawValue >= 0 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .beginning: "beginning"
        case .end: "end"
        case .stored: "stored"
        case .invalid: "none"
        default: String(rawValue)
        }
    }
}

/// A partition and a position in it.
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    /// The partition.
    public var topicPartition: TopicPartition
    /// The position in it.
    public var offset: KafkaOffset

    /// Names position `offset` of `topicPartition`.
    public init(_ topicPartition: TopicPartition, offset: KafkaOffset) {
        self.topicPartition = topicPartition
        self.offset = offset
    }

    /// Names position `offset` of partition `partition` of `topic`.
    public init(topic: String, partition: Int32, offset: KafkaOffset) {
        self.init(TopicPartition(topic: topic, partition: partition), offset: offset)
    }

    public var description: String { "\(topicPartition)@\(offset)" }
}

/// The low and high watermarks of a partition: the first offset still in the log, and the
/// offset the next record will get.
public struct KafkaWatermarks: Hashable, Sendable {
    /// The oldest offset still in the log.
    public var low: Int64
    /// The offset of the next record produced (the log end offset).
    public var high: Int64

    /// Makes watermarks.
    public init(low: Int64, high: Int64) {
        self.low = low
        self.high = high
    }
}

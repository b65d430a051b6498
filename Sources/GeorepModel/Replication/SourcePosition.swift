/// A source topic partition: the unit whose applied position a store records.
///
/// (GeorepKafka has its own `TopicPartition`; the applier converts between the two.)
public struct SourcePartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The topic, e.g. `georep.us-east-1.changes`.
    public var topic: String
    /// The partition number.
    public var partition: Int32

    /// Makes a topic partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// `topic[partition]`.
    public var description: String { "\(topic)[\(partition)]" }

    /// Orders by topic, then partition.
    public static func < (lhs: SourcePartition, rhs: SourcePartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// Where a consumed event came from: its topic partition and offset.
public struct SourcePosition: Hashable, Sendable, CustomStringConvertible {
    /// The source topic partition.
    public var partition: SourcePartition
    /// The event's offset in it.
    public var offset: Int64

    /// Makes a position.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.partition = SourcePartition(topic: topic, partition: partition)
        self.offset = offset
    }

    /// `topic[partition]@offset`.
    public var description: String { "\(partition)@\(offset)" }
}

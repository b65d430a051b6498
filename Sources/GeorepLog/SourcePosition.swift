/// Where a consumed event came from: its topic partition and offset.
public struct SourcePosition: Hashable, Sendable, CustomStringConvertible {
    /// The source topic partition.
    public var partition: TopicPartition
    /// The event's offset in it.
    public var offset: Int64

    /// Makes a position.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.partition = TopicPartition(topic: topic, partition: partition)
        self.offset = offset
    }

    /// `topic[partition]@offset`.
    public var description: String { "\(partition)@\(offset)" }
}

public import GeorepLog
public import Foundation

/// A record to produce: topic, optional partition, key, value and headers.
public struct KafkaRecord: Sendable {
    /// The topic to produce to.
    public var topic: String
    /// The partition; nil lets the partitioner choose from the key (librdkafka's default,
    /// consistent_random: records with the same key go to the same partition).
    public var partition: Int32?
    /// The key; nil for none.
    public var key: Data?
    /// The value; nil for a tombstone (a delete marker in a compacted topic).
    public var value: Data?
    /// The headers, in order.
    public var headers: [KafkaHeader]

    /// Makes a record.
    public init(topic: String, partition: Int32? = nil, key: Data?, value: Data?, headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Makes a record with a UTF-8 string key.
    public init(topic: String, partition: Int32? = nil, key: String, value: Data?, headers: [KafkaHeader] = []) {
        self.init(topic: topic, partition: partition, key: Data(key.utf8), value: value, headers: headers)
    }
}

/// The outcome of producing one record: where it landed, or why it was not delivered.
public struct KafkaDeliveryReport: Sendable {
    /// The topic.
    public var topic: String
    /// The partition it was written to (-1 when unknown because it failed).
    public var partition: Int32
    /// The offset it got (-1 when it failed or the broker did not say).
    public var offset: Int64
    /// Why it was not delivered; nil when delivered.
    public var error: KafkaError?

    /// Makes a delivery report.
    public init(topic: String, partition: Int32, offset: Int64, error: KafkaError?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.error = error
    }
}

/// A consumed record.
public struct KafkaMessage: Sendable {
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The record's offset in its partition.
    public var offset: Int64
    /// The key; nil when the record has none.
    public var key: Data?
    /// The value; nil for a tombstone.
    public var value: Data?
    /// The headers, in order.
    public var headers: [KafkaHeader]
    /// The record timestamp in milliseconds since the epoch, when known.
    public var timestampMilliseconds: Int64?
    /// True for a partition-end marker (see ``KafkaConsumerConfiguration/reportsPartitionEOF``):
    /// then there is no key, value or headers, and `offset` is the end offset.
    public var isPartitionEOF: Bool

    /// Makes a consumed record.
    public init(
        topic: String, partition: Int32, offset: Int64, key: Data?, value: Data?,
        headers: [KafkaHeader] = [], timestampMilliseconds: Int64? = nil, isPartitionEOF: Bool = false
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
        self.isPartitionEOF = isPartitionEOF
    }

    /// The partition this record came from.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

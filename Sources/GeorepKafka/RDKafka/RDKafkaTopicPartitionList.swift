internal import CRDKafka
import GeorepLog

/// Conversions between our partition values and `rd_kafka_topic_partition_list_t`.
enum RDKafkaTopicPartitionList {
    typealias Pointer = UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    /// A new list holding `items`; the caller destroys it with `rd_kafka_topic_partition_list_destroy`.
    static func make(_ items: [TopicPartitionOffset]) -> Pointer {
        let list = rd_kafka_topic_partition_list_new(Int32(items.count))!
        for item in items {
            let element = rd_kafka_topic_partition_list_add(list, item.topicPartition.topic, item.topicPartition.partition)!
            element.pointee.offset = item.offset.rawValue
        }
        return list
    }

    /// A new list of `partitions` with no offset.
    static func make(_ partitions: [TopicPartition]) -> Pointer {
        make(partitions.map { TopicPartitionOffset($0, offset: .invalid) })
    }

    /// Runs `body` with a temporary list holding `items`.
    static func with<T>(_ items: [TopicPartitionOffset], _ body: (Pointer) throws(KafkaError) -> T) throws(KafkaError) -> T {
        let list = make(items)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return try body(list)
    }

    /// The elements of `list`, each with its per-partition error code.
    static func read(_ list: Pointer) -> [(TopicPartitionOffset, KafkaError.Code)] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return [] }
        return (0..<count).map { i in
            let element = elems[i]
            return (
                TopicPartitionOffset(
                    topic: String(cString: element.topic),
                    partition: element.partition,
                    offset: KafkaOffset(rawValue: element.offset)
                ),
                KafkaError.Code(rawValue: element.err.rawValue)
            )
        }
    }

    /// The elements of `list`; throws the first per-partition error, naming the partition.
    static func readChecked(_ list: Pointer, _ context: String) throws(KafkaError) -> [TopicPartitionOffset] {
        let elements = read(list)
        if let (failed, code) = elements.first(where: { $0.1 != .noError }) {
            throw KafkaError(code: code, message: "\(context) \(failed.topicPartition): \(code.description)")
        }
        return elements.map(\.0)
    }
}

import CRDKafka

/// librdkafka's default partitioner (`consistent_random`): a keyed record goes to
/// `crc32(key) % partitions`. The producers of georep use it, so a row's events are in the
/// same partition of every region's topic, and a node can name the partition that holds a row.
///
/// Producers of other clients (the Java client hashes with murmur2) place keys differently;
/// their events are still applied, only this mapping does not describe them.
public enum KafkaPartitioner {
    /// The partition of `key` among `partitions` (key not empty, partitions positive).
    public static func partition(of key: String, partitions: Int) -> Int32 {
        precondition(partitions > 0 && !key.isEmpty, "a keyed partition needs a key and partitions")
        var key = key
        return key.withUTF8 { bytes in
            rd_kafka_msg_partitioner_consistent(nil, bytes.baseAddress, bytes.count, Int32(partitions), nil, nil)
        }
    }
}

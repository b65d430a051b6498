public import GeorepKafka
public import GeorepModel

/// The Kafka names of SPEC §2, in one place.
public enum Topics {
    /// `georep.<region>.changes`: the change topic (write-ahead log) of `region`.
    public static func changes(_ region: String) -> String { "georep.\(region).changes" }
    /// `georep.<region>.pinned`: region-pinned rows, consumed only by `region`'s nodes.
    public static func pinned(_ region: String) -> String { "georep.\(region).pinned" }
    /// `georep.<region>.dlq`: dead letters seen by `region`.
    public static func deadLetters(_ region: String) -> String { "georep.\(region).dlq" }
    /// `georep.control`: RegionConfig records.
    public static let control = "georep.control"
    /// `georep.apply.<region>`: the apply consumer group of `region`.
    public static func applyGroup(_ region: String) -> String { "georep.apply.\(region)" }
}

extension Topics {
    /// Every partition of `topic`, a change or pinned topic of `config`'s deployment (each has
    /// `config.partitions` of them, at least one).
    public static func partitions(of topic: String, in config: GeorepConfig) -> [TopicPartition] {
        (0..<Int32(max(1, config.partitions))).map { TopicPartition(topic: topic, partition: $0) }
    }
}

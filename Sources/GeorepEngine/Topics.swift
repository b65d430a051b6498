public import GeorepLog
import GeorepKafka
public import GeorepModel

/// The Kafka topic and consumer group names (`docs/events-and-topics.md#topics`), in one place.
public enum Topics {
    /// `georep.<region>.changes`: the change topic (write-ahead log) of `region`.
    public static func changes(_ region: String) -> String { "georep.\(region).changes" }
    /// `georep.<region>.pinned`: region-pinned rows, consumed only by `region`'s nodes.
    public static func pinned(_ region: String) -> String { "georep.\(region).pinned" }
    /// `georep.<region>.dlq`: dead letters seen by `region`.
    public static func deadLetters(_ region: String) -> String { "georep.\(region).dlq" }
    /// `georep.control`: RegionConfig records.
    public static let control = "georep.control"
    /// `georep.directory`: the claims of region-pinned rows' homes, on the control cluster. Its
    /// one partition orders every claim of a row the same way for every region: the first wins.
    public static let directory = "georep.directory"
    /// `georep.directory.<region>`: the consumer group `region` commits its directory offsets to.
    public static func directoryGroup(_ region: String) -> String { "georep.directory.\(region)" }
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

extension Topics {
    /// A topic georep uses, on the cluster that holds it.
    public struct Required: Sendable, Hashable {
        /// The bootstrap servers of its cluster.
        public var cluster: String
        /// Its name.
        public var name: String
        /// How many partitions it has.
        public var partitions: Int
    }

    /// Every topic a deployment of `config` uses: each region's change, pinned and dead-letter
    /// topics on its cluster, and the control and directory topics on the control cluster.
    public static func required(by config: GeorepConfig) -> [Required] {
        var topics: [Required] = []
        for region in config.regions {
            for name in [changes(region.id), pinned(region.id), deadLetters(region.id)] {
                topics.append(Required(cluster: region.kafka, name: name, partitions: max(1, config.partitions)))
            }
        }
        topics.append(Required(cluster: config.controlCluster, name: control, partitions: 1))
        topics.append(Required(cluster: config.controlCluster, name: directory, partitions: 1))
        return topics
    }
}

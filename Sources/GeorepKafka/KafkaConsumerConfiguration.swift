/// Settings of a ``KafkaConsumer``.
///
/// As for the producer, ``properties`` passes any other librdkafka property through.
public struct KafkaConsumerConfiguration: Sendable {
    /// Where a partition without a committed or explicit offset starts, and what happens when
    /// the position falls out of the log.
    public enum OffsetReset: String, Sendable {
        /// From the oldest record still in the log.
        case earliest
        /// From the end: only records produced from now on.
        case latest
        /// Raise ``KafkaError/Code/autoOffsetReset``: data was lost to retention and the
        /// application decides (the georep applier reports it loudly).
        case error
    }

    /// `bootstrap.servers`: comma-separated `host:port` list.
    public var bootstrapServers: String
    /// `group.id`: the consumer group, used by ``KafkaConsumer/subscribe(topics:)``
    /// and by offset commits.
    public var groupID: String
    /// `client.id`.
    public var clientID: String = "georep"
    /// `auto.offset.reset`.
    public var offsetReset: OffsetReset = .earliest
    /// `enable.auto.commit`: off by default; georep commits explicitly after applying.
    public var isAutoCommitEnabled: Bool = false
    /// `fetch.wait.max.ms`: how long a broker may hold an empty fetch. The development
    /// broker always waits this long before answering an empty fetch, so keep it low there.
    public var fetchWaitMaxMilliseconds: Int = 5
    /// `queued.max.messages.kbytes`: bound of the records librdkafka prefetches into the
    /// consumer queue (all partitions together), so memory stays bounded when the application
    /// is slower than the brokers.
    public var maxPrefetchKilobytes: Int = 65_536
    /// `queued.min.messages`: records per partition librdkafka keeps prefetched. Past it
    /// librdkafka 2.0.2 stops fetching that partition and its broker thread may sleep for up
    /// to a second before looking again, so it is high here: ``maxPrefetchKilobytes`` bounds memory.
    public var minPrefetchMessages: Int = 1_000_000
    /// `fetch.error.backoff.ms`: how long librdkafka 2.0.2 waits before fetching a partition
    /// again after a failed fetch, and also after the prefetch queue was full. Its default
    /// (500 ms) stalls a consumer that keeps up; a short pause keeps it streaming.
    public var fetchBackoffMilliseconds: Int = 20
    /// `session.timeout.ms` of the group membership.
    public var sessionTimeoutMilliseconds: Int = 10_000
    /// `max.poll.interval.ms`.
    public var maxPollIntervalMilliseconds: Int = 300_000
    /// `enable.partition.eof`: report the end of each partition as a ``KafkaMessage`` with
    /// ``KafkaMessage/isPartitionEOF`` set.
    public var reportsPartitionEOF: Bool = false
    /// Any other librdkafka property, passed through unchanged; wins over the typed settings.
    public var properties: [String: String] = [:]

    /// Settings for group `groupID` on the cluster reached at `bootstrapServers`.
    public init(bootstrapServers: String, groupID: String) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
    }

    /// The librdkafka properties these settings stand for, in a stable order.
    var librdkafkaProperties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
            ("client.id", clientID),
            ("auto.offset.reset", offsetReset.rawValue),
            ("enable.auto.commit", String(isAutoCommitEnabled)),
            ("enable.auto.offset.store", String(isAutoCommitEnabled)),
            ("fetch.wait.max.ms", String(fetchWaitMaxMilliseconds)),
            ("queued.max.messages.kbytes", String(maxPrefetchKilobytes)),
            ("queued.min.messages", String(minPrefetchMessages)),
            ("fetch.error.backoff.ms", String(fetchBackoffMilliseconds)),
            ("session.timeout.ms", String(sessionTimeoutMilliseconds)),
            ("max.poll.interval.ms", String(maxPollIntervalMilliseconds)),
            ("enable.partition.eof", String(reportsPartitionEOF)),
        ]
        result += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return result
    }
}

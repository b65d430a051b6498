internal import CRDKafka
public import Logging

/// The development broker: librdkafka's mock cluster, a Kafka-protocol broker on loopback
/// with N brokers, so that a laptop or a test needs no JVM. Real clients (ours, kcat) talk
/// to it over TCP at ``bootstrapServers``.
///
/// It has no CreateTopics: create topics with ``createTopic(_:partitions:replicationFactor:)``.
/// It keeps about 5 MiB per partition and drops older batches, like a very short retention,
/// and it does not fence transactional producers.
///
/// Faults can be injected: a broker down and up, a round-trip time per broker (to imitate a
/// cross-region link), request errors.
public final class DevelopmentBroker: Sendable {
    /// Kafka API keys for ``pushRequestErrors(apiKey:_:)``.
    public enum APIKey {
        /// Produce.
        public static let produce: Int16 = 0
        /// Fetch.
        public static let fetch: Int16 = 1
        /// ListOffsets.
        public static let listOffsets: Int16 = 2
        /// Metadata.
        public static let metadata: Int16 = 3
        /// OffsetCommit.
        public static let offsetCommit: Int16 = 8
        /// OffsetFetch.
        public static let offsetFetch: Int16 = 9
        /// JoinGroup.
        public static let joinGroup: Int16 = 11
        /// Heartbeat.
        public static let heartbeat: Int16 = 12
    }

    /// The name of the thread that serves every broker of a development cluster (librdkafka's
    /// mock cluster thread), for measuring its CPU.
    public static let threadName = "rdk:mock"

    private let client: RDKafkaClient
    private nonisolated(unsafe) let cluster: OpaquePointer
    /// The `host:port` list for clients (`bootstrap.servers`, `kcat -b`).
    public let bootstrapServers: String
    /// The ids of the brokers, from 1.
    public let brokerIDs: [Int32]

    /// Starts a cluster of `brokers` brokers listening on loopback at random ports.
    public init(brokers: Int = 1, logger: Logger = Logger(label: "georep.dev-broker")) throws(KafkaError) {
        guard brokers >= 1 else {
            throw KafkaError(code: .invalidArgument, message: "the development broker needs at least 1 broker, not \(brokers)")
        }
        // The mock cluster lives inside a client handle of its own.
        client = try RDKafkaClient(
            type: RD_KAFKA_PRODUCER,
            properties: [("client.id", "georep-dev-broker"), ("log_level", "3")],
            events: 0,
            logger: logger
        )
        guard let cluster = rd_kafka_mock_cluster_new(client.handle, Int32(brokers)) else {
            client.destroy()
            throw KafkaError(code: .fatal, message: "the mock cluster could not start")
        }
        client.startPolling { _ in }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        brokerIDs = (1...Int32(brokers)).map { $0 }
    }

    /// Creates `name` with `partitions` partitions, each replicated `replicationFactor` times
    /// (at most the number of brokers).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        guard partitions >= 1, replicationFactor >= 1, replicationFactor <= brokerIDs.count else {
            throw KafkaError(
                code: .invalidArgument,
                message: "topic \(name): \(partitions) partitions and replication factor \(replicationFactor) "
                    + "do not fit a cluster of \(brokerIDs.count) brokers"
            )
        }
        try KafkaError.check(
            rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor)),
            "cannot create topic \(name)"
        )
    }

    /// Takes broker `id` down: its connections close and it refuses new ones until ``setBrokerUp(_:)``.
    public func setBrokerDown(_ id: Int32) throws(KafkaError) {
        try KafkaError.check(rd_kafka_mock_broker_set_down(cluster, id), "cannot take broker \(id) down")
    }

    /// Brings broker `id` back up.
    public func setBrokerUp(_ id: Int32) throws(KafkaError) {
        try KafkaError.check(rd_kafka_mock_broker_set_up(cluster, id), "cannot bring broker \(id) up")
    }

    /// Delays every response of broker `id` by `milliseconds`, imitating a distant region.
    public func setRoundTripTime(_ milliseconds: Int, broker id: Int32) throws(KafkaError) {
        try KafkaError.check(rd_kafka_mock_broker_set_rtt(cluster, id, Int32(milliseconds)), "cannot set the round-trip time of broker \(id)")
    }

    /// Makes the next requests of `apiKey` (on any broker) fail with `errors`, one each, in order.
    public func pushRequestErrors(apiKey: Int16, _ errors: [KafkaError.Code]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, codes.count, codes)
    }

    /// Forgets request errors pushed for `apiKey` and not yet used.
    public func clearRequestErrors(apiKey: Int16) {
        rd_kafka_mock_clear_request_errors(cluster, apiKey)
    }

    /// Stops the brokers and frees the cluster, exactly once, after every client has closed.
    /// The teardown blocks until the cluster's thread has ended, so it runs on a Dispatch
    /// thread while the caller awaits it, never on Swift's cooperative pool.
    public func shutdown() async {
        try? await runBlocking { [self] in
            rd_kafka_mock_cluster_destroy(cluster)
            client.destroy()
        }
    }

    /// Starts a development broker of `brokers` brokers, runs `body` with it and shuts the
    /// broker down afterwards, also when `body` throws.
    public static func with<T>(
        brokers: Int = 1, logger: Logger = Logger(label: "georep.dev-broker"), _ body: (DevelopmentBroker) async throws -> T
    ) async throws -> T {
        let broker = try DevelopmentBroker(brokers: brokers, logger: logger)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(broker))
        } catch {
            result = .failure(error)
        }
        await broker.shutdown()
        return try result.get()
    }
}

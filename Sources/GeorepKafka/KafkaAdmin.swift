internal import CRDKafka
public import Logging

/// Administers topics on a real Kafka cluster (the development broker has no CreateTopics:
/// use ``DevelopmentBroker/createTopic(_:partitions:replicationFactor:)`` there).
public final class KafkaAdmin: Sendable {
    private let client: RDKafkaClient

    /// Connects to the cluster at `bootstrapServers`; `properties` pass through to librdkafka
    /// (SASL, TLS).
    public init(bootstrapServers: String, properties: [String: String] = [:], logger: Logger) throws(KafkaError) {
        client = try RDKafkaClient(
            type: RD_KAFKA_PRODUCER,
            properties: [("bootstrap.servers", bootstrapServers)] + properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            events: 0,
            logger: logger
        )
        client.startPolling { _ in }
    }

    /// Creates `topic` with `partitions` partitions; succeeds when it already exists.
    ///
    /// - Parameter replicationFactor: -1 for the broker's default.
    public func createTopic(_ topic: String, partitions: Int, replicationFactor: Int = -1, timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = client
        try await runBlocking { () throws(KafkaError) in
            var errstr = [CChar](repeating: 0, count: 512)
            guard let newTopic = rd_kafka_NewTopic_new(topic, Int32(partitions), Int32(replicationFactor), &errstr, errstr.count) else {
                throw KafkaError(code: .invalidArgument, message: "topic \(topic): \(String(errorBuffer: errstr))")
            }
            defer { rd_kafka_NewTopic_destroy(newTopic) }
            let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
            defer { rd_kafka_AdminOptions_destroy(options) }
            rd_kafka_AdminOptions_set_operation_timeout(options, timeout.milliseconds, &errstr, errstr.count)
            let queue = rd_kafka_queue_new(client.handle)
            defer { rd_kafka_queue_destroy(queue) }
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(client.handle, &topics, 1, options, queue)
            guard let event = rd_kafka_queue_poll(queue, timeout.milliseconds + 1000) else {
                throw KafkaError(code: .timedOut, message: "creating topic \(topic) timed out")
            }
            defer { rd_kafka_event_destroy(event) }
            try KafkaError.check(rd_kafka_event_error(event), "cannot create topic \(topic)")
            var count = 0
            guard let result = rd_kafka_event_CreateTopics_result(event),
                  let results = rd_kafka_CreateTopics_result_topics(result, &count), count == 1
            else { throw KafkaError(code: .state, message: "creating topic \(topic): the broker sent no result") }
            let err = rd_kafka_topic_result_error(results[0])
            if err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                let text = rd_kafka_topic_result_error_string(results[0]).map { String(cString: $0) } ?? ""
                throw KafkaError(code: KafkaError.Code(rawValue: err.rawValue), message: "cannot create topic \(topic): \(text)")
            }
        }
    }

    /// Destroys the client. Call exactly once.
    public func close() async {
        let client = client
        try? await runBlocking { client.destroy() }
    }
}

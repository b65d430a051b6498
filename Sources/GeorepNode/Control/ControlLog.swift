public import GeorepLog
import Foundation
import GeorepEngine
public import GeorepKafka
public import GeorepModel
public import Logging

/// Reads and writes the control topic `georep.control` (one partition, keyed by region id).
public struct ControlLog: Sendable {
    /// The control topic's partition.
    public static let partition = TopicPartition(topic: Topics.control, partition: 0)

    /// The bootstrap servers of the cluster holding the topic.
    public var cluster: String { config.controlCluster }
    let config: GeorepConfig
    /// Properties of its clients over the cluster's `kafka_properties`.
    let extra: [String: String]
    let logger: Logger

    /// The control log of `config` (on its control cluster, with that cluster's
    /// `kafka_properties` and `extra` over them).
    public init(config: GeorepConfig, extra: [String: String] = [:], logger: Logger) {
        self.config = config
        self.extra = extra
        self.logger = logger
    }

    /// A consumer assigned to the control topic from its beginning.
    func makeConsumer(clientID: String) async throws(KafkaError) -> KafkaConsumer {
        let configuration = config.consumerConfiguration(cluster, groupID: "georep.control.\(clientID)", clientID: clientID, extra: extra)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        do {
            try await consumer.assign([TopicPartitionOffset(Self.partition, offset: .beginning)])
        } catch {
            await consumer.close()
            throw error
        }
        return consumer
    }

    /// Reads the whole log up to its end now.
    ///
    /// - Throws: `KafkaError` when the cluster does not answer within `timeout`.
    public func read(timeout: Duration = .seconds(10)) async throws(KafkaError) -> ControlState {
        try await readToEnd(timeout: timeout).state
    }

    /// Reads the whole log up to its end now; also returns the offset of the first record not read.
    func readToEnd(timeout: Duration) async throws(KafkaError) -> (state: ControlState, next: Int64) {
        var cursor = try await openCursor()
        let state = try await cursor.consumer.closing { _ throws(KafkaError) in try await cursor.read(timeout: timeout) }
        return (state, cursor.next)
    }

    /// A cursor at the beginning of the log, for reading it several times with one consumer.
    public func openCursor() async throws(KafkaError) -> ControlCursor {
        ControlCursor(consumer: try await makeConsumer(clientID: "georep-control-read-\(ProcessInfo.processInfo.processIdentifier)"))
    }

    /// Appends `records` in order, each acknowledged by Kafka.
    public func publish(_ records: [RegionControlRecord]) async throws(KafkaError) {
        let writer = try ControlWriter(log: self)
        do {
            try await writer.publish(records)
        } catch {
            await writer.close()
            throw error
        }
        await writer.close()
    }
}

/// Reads `georep.control` several times through one consumer: each read fetches only what was
/// appended since the last (a new consumer first connects and looks the topic up, a few round
/// trips to the control cluster). ``close()`` it after the last read.
public struct ControlCursor: Sendable {
    let consumer: KafkaConsumer
    /// The state of the log up to ``next``.
    private var state = ControlState()
    /// The offset of the first record not read yet.
    private(set) var next: Int64 = 0

    init(consumer: KafkaConsumer) {
        self.consumer = consumer
    }

    /// Reads the records appended since the last read, up to the log's end now, and returns the
    /// state of the whole log.
    ///
    /// - Throws: `KafkaError` when the cluster does not answer within `timeout`.
    public mutating func read(timeout: Duration = .seconds(10)) async throws(KafkaError) -> ControlState {
        let end = try await consumer.endOffsets(of: [ControlLog.partition], timeout: timeout)[ControlLog.partition] ?? 0
        let deadline = ContinuousClock.now + timeout
        while next < end {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: .timedOut, message: "read \(next) of \(end) records of \(Topics.control) within \(timeout)")
            }
            for message in try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200)) where !message.isPartitionEOF {
                next = max(next, message.offset + 1)
                if let value = message.value, let record = RegionControlRecord.decode(value) { state.take(record) }
            }
        }
        return state
    }

    /// Closes the consumer.
    public func close() async {
        await consumer.close()
    }
}

/// Appends records to `georep.control` through one producer kept for several appends (the
/// first append of a new producer waits for its connection and the topic's metadata).
public final class ControlWriter: Sendable {
    private let producer: KafkaProducer

    /// A writer to `log`'s cluster; ``close()`` it after the last append.
    public init(log: ControlLog) throws(KafkaError) {
        var configuration = log.config.producerConfiguration(log.cluster, clientID: "georep-control-writer", extra: log.extra)
        // A duplicated RegionConfig record changes nothing; without idempotence the first send
        // does not wait for a producer id.
        configuration.isIdempotent = false
        producer = try KafkaProducer(configuration: configuration, logger: log.logger)
    }

    /// Appends `records` in order, each acknowledged by Kafka.
    public func publish(_ records: [RegionControlRecord]) async throws(KafkaError) {
        for record in records {
            let report = try await producer.send(KafkaRecord(topic: Topics.control, partition: 0, key: record.region, value: record.encoded()))
            if let error = report.error { throw error }
        }
    }

    /// Flushes and closes the producer.
    public func close() async {
        await producer.close(timeout: .seconds(5))
    }
}

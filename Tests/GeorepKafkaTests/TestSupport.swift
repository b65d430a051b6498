import Foundation
import GeorepKafka
import Logging
import Testing

/// A logger for tests: warnings and worse, so that a failing test shows librdkafka's complaints.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// A development broker with `topics` created, shut down after `body`.
func withBroker<T>(
    brokers: Int = 1,
    topics: [String: Int] = [:],
    replicationFactor: Int = 1,
    _ body: (DevelopmentBroker) async throws -> T
) async throws -> T {
    try await DevelopmentBroker.with(brokers: brokers, logger: testLogger("dev-broker")) { broker in
        for (topic, partitions) in topics {
            try broker.createTopic(topic, partitions: partitions, replicationFactor: replicationFactor)
        }
        return try await body(broker)
    }
}

func producerConfiguration(_ broker: DevelopmentBroker) -> KafkaProducerConfiguration {
    KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers)
}

func consumerConfiguration(_ broker: DevelopmentBroker, group: String = "test-\(UUID().uuidString)") -> KafkaConsumerConfiguration {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: group)
    configuration.sessionTimeoutMilliseconds = 6000
    return configuration
}

/// Polls `consumer` until `count` records arrived or `timeout` passed.
func consume(_ consumer: KafkaConsumer, count: Int, timeout: Duration = .seconds(60)) async throws -> [KafkaMessage] {
    var messages: [KafkaMessage] = []
    let deadline = ContinuousClock.now + timeout
    while messages.count < count, ContinuousClock.now < deadline {
        messages += try await consumer.poll(maxMessages: 5000, timeout: .milliseconds(200))
    }
    return messages
}

/// Assigns every partition of `topic` from the beginning.
func assignAll(_ consumer: KafkaConsumer, topic: String, partitions: Int) async throws {
    try await consumer.assign((0..<partitions).map { TopicPartitionOffset(topic: topic, partition: Int32($0), offset: .beginning) })
}

/// Collects delivery reports from the producer's poller thread.
final class ReportCollector: Sendable {
    private let reports = Mutex<[KafkaDeliveryReport]>([])
    var handler: KafkaProducer.DeliveryReportHandler { { batch in self.reports.withLock { $0 += batch } } }
    var all: [KafkaDeliveryReport] { reports.withLock { $0 } }
}

import Synchronization

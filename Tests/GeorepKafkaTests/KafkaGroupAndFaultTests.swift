import Foundation
import GeorepKafka
import Synchronization
import Testing

@Suite("Consumer groups and broker faults")
struct KafkaGroupAndFaultTests {
    /// Records a member processed and whose offsets it then committed successfully.
    final class CommittedLog: Sendable {
        private let entries = Mutex<[String]>([])
        func append(_ batch: [KafkaMessage]) { entries.withLock { $0 += batch.map { "\($0.partition):\($0.offset)" } } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// One poll-process-commit step: a batch counts only once its commit succeeded.
    static func step(_ consumer: KafkaConsumer, _ log: CommittedLog) async throws -> Int {
        let batch = try await consumer.poll(maxMessages: 50, timeout: .milliseconds(100))
        guard !batch.isEmpty else { return 0 }
        let next = Dictionary(batch.map { ($0.topicPartition, $0.offset + 1) }, uniquingKeysWith: max)
        do {
            try await consumer.commit(next.map { TopicPartitionOffset($0.key, offset: KafkaOffset($0.value)) })
            log.append(batch)
            return batch.count
        } catch {
            // Not committed (a rebalance is under way): rewind, so that these records come
            // again, here or at the member that takes the partitions over.
            let firsts = Dictionary(batch.map { ($0.topicPartition, $0.offset) }, uniquingKeysWith: min)
            try? await consumer.seek(firsts.map { TopicPartitionOffset($0.key, offset: KafkaOffset($0.value)) })
            return 0
        }
    }

    @Test("two consumers in one group split the partitions; when one leaves the other takes over without losing or duplicating a committed record")
    func groupTakeover() async throws {
        let topic = "grouped"
        let total = 6000
        try await withBroker(topics: [topic: 6]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            for i in 0..<total {
                try await producer.enqueue(KafkaRecord(topic: topic, key: "k\(i)", value: Data(String(i).utf8)))
            }
            try await producer.flush(timeout: .seconds(30))
            await producer.close()

            let group = "takeover"
            let log = CommittedLog()
            let first = try KafkaConsumer(configuration: consumerConfiguration(broker, group: group), logger: testLogger("first"))
            let second = try KafkaConsumer(configuration: consumerConfiguration(broker, group: group), logger: testLogger("second"))
            try first.subscribe(topics: [topic])
            try second.subscribe(topics: [topic])

            // Both join before either consumes: poll without processing until both hold partitions.
            let deadline = ContinuousClock.now + .seconds(30)
            while first.assignment.isEmpty || second.assignment.isEmpty || first.assignment.count + second.assignment.count != 6 {
                try #require(ContinuousClock.now < deadline, "the group never split the partitions")
                async let a = first.poll(maxMessages: 1, timeout: .milliseconds(50))
                async let b = second.poll(maxMessages: 1, timeout: .milliseconds(50))
                _ = try await (a, b)  // Records polled here are never committed: they will come again.
            }
            #expect(Set(first.assignment).isDisjoint(with: second.assignment))
            #expect(Set(first.assignment + second.assignment).count == 6)

            // Both consume for a while, then the first leaves.
            var firstCount = 0
            let midway = ContinuousClock.now + .seconds(30)
            while firstCount < 500 {
                try #require(ContinuousClock.now < midway, "the first member consumed only \(firstCount) records")
                firstCount += try await Self.step(first, log)
                _ = try await Self.step(second, log)
            }
            await first.close()

            let end = ContinuousClock.now + .seconds(60)
            while log.all.count < total, ContinuousClock.now < end {
                _ = try await Self.step(second, log)
            }
            #expect(second.assignment.count == 6)
            // Nothing more arrives once everything was committed.
            for _ in 0..<5 { _ = try await Self.step(second, log) }
            await second.close()

            let committed = log.all
            #expect(committed.count == total)
            #expect(Set(committed).count == total)
        }
    }

    @Test("a broker down for 2 seconds while producing 50,000 idempotent records leaves exactly 50,000, none duplicated")
    func brokerDownWhileProducing() async throws {
        let topic = "faulty"
        let total = 50_000
        try await withBroker(brokers: 3, topics: [topic: 6], replicationFactor: 3) { broker in
            let collector = ReportCollector()
            var configuration = producerConfiguration(broker)
            configuration.properties["retry.backoff.ms"] = "50"
            let producer = try KafkaProducer(configuration: configuration, logger: testLogger("producer"), onDeliveryReports: collector.handler)
            #expect(configuration.isIdempotent)
            for i in 0..<total {
                if i == total / 2 {
                    try broker.setBrokerDown(1)
                    Task {
                        try await Task.sleep(for: .seconds(2))
                        try broker.setBrokerUp(1)
                    }
                }
                try await producer.enqueue(KafkaRecord(topic: topic, key: "k\(i)", value: Data(String(i).utf8)))
                if i % 5000 == 0 { try await Task.sleep(for: .milliseconds(200)) }  // Spread production over the outage.
            }
            try await producer.flush(timeout: .seconds(90))
            await producer.close()
            #expect(collector.all.count == total)
            #expect(collector.all.allSatisfy { $0.error == nil })

            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
            try await assignAll(consumer, topic: topic, partitions: 6)
            var messages = try await consume(consumer, count: total, timeout: .seconds(30))
            messages += try await consume(consumer, count: 1, timeout: .seconds(2))  // Nothing beyond them.
            await consumer.close()
            #expect(messages.count == total)
            #expect(Set(messages.map { String(decoding: $0.value!, as: UTF8.self) }).count == total)
        }
    }
}

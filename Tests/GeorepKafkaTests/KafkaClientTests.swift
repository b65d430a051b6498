import GeorepLog
import Foundation
import GeorepKafka
import Synchronization
import Testing

@Suite("Producer and consumer against the development broker over TCP")
struct KafkaClientTests {
    @Test("100,000 records with keys and headers across 6 partitions arrive complete and in per-partition order")
    func hundredThousandRecords() async throws {
        let topic = "bulk"
        let total = 100_000
        try await withBroker(topics: [topic: 6]) { broker in
            let collector = ReportCollector()
            let producer = try KafkaProducer(
                configuration: producerConfiguration(broker), logger: testLogger("producer"),
                onDeliveryReports: collector.handler
            )
            for i in 0..<total {
                try await producer.enqueue(KafkaRecord(
                    topic: topic, key: "key-\(i % 1000)", value: Data("value-\(i)".utf8),
                    headers: [KafkaHeader(name: "seq", string: String(i)), KafkaHeader(name: "georep-origin", string: "us-east-1")]
                ))
            }
            try await producer.flush(timeout: .seconds(60))
            await producer.close()
            let reports = collector.all
            #expect(reports.count == total)
            #expect(reports.allSatisfy { $0.error == nil })

            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
            try await assignAll(consumer, topic: topic, partitions: 6)
            let messages = try await consume(consumer, count: total)
            await consumer.close()

            #expect(messages.count == total)
            // Delivery-report offsets are exactly the consumed offsets.
            let reported = Set(reports.map { "\($0.partition):\($0.offset)" })
            let consumed = Set(messages.map { "\($0.partition):\($0.offset)" })
            #expect(reported == consumed)
            // Every record arrived once, intact, in the order it was produced within its partition.
            let sequences = messages.compactMap { $0.headers.string(named: "seq").flatMap(Int.init) }
            #expect(Set(sequences).count == total)
            for partition in 0..<6 {
                let inPartition = messages.filter { $0.partition == partition }
                let seqs = inPartition.map { Int($0.headers.string(named: "seq")!)! }
                #expect(seqs == seqs.sorted(), "partition \(partition) out of order")
                #expect(inPartition.map(\.offset) == Array(0..<Int64(inPartition.count)))
            }
            for message in messages.prefix(1000) {
                let seq = Int(message.headers.string(named: "seq")!)!
                #expect(message.key == Data("key-\(seq % 1000)".utf8))
                #expect(message.value == Data("value-\(seq)".utf8))
                #expect(message.headers.string(named: "georep-origin") == "us-east-1")
            }
            // Records with one key share a partition.
            let partitionsByKey = Dictionary(grouping: messages, by: { $0.key! }).mapValues { Set($0.map(\.partition)) }
            #expect(partitionsByKey.values.allSatisfy { $0.count == 1 })
        }
    }

    @Test("a bulk enqueue across two topics, held back by a full local queue, arrives complete and in order", .timeLimit(.minutes(1)))
    func bulkEnqueue() async throws {
        let total = 20_000
        try await withBroker(topics: ["bulk-a": 1, "bulk-b": 1]) { broker in
            var configuration = producerConfiguration(broker)
            configuration.maxQueuedMessages = 500  // far fewer than the records: back-pressure
            let collector = ReportCollector()
            let producer = try KafkaProducer(configuration: configuration, logger: testLogger("producer"), onDeliveryReports: collector.handler)
            // Runs of 1,000 records per topic, so the producer switches topics 19 times.
            let records = (0..<total).lazy.map { i in
                KafkaRecord(topic: (i / 1000) % 2 == 0 ? "bulk-a" : "bulk-b", key: nil, value: Data(String(i).utf8))
            }
            try await producer.enqueue(contentsOf: records)
            try await producer.flush(timeout: .seconds(60))
            await producer.close()
            #expect(collector.all.count == total)
            #expect(collector.all.allSatisfy { $0.error == nil })

            for (topic, expected) in [("bulk-a", (0..<total).filter { ($0 / 1000) % 2 == 0 }), ("bulk-b", (0..<total).filter { ($0 / 1000) % 2 == 1 })] {
                let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
                try await assignAll(consumer, topic: topic, partitions: 1)
                let messages = try await consume(consumer, count: expected.count)
                await consumer.close()
                #expect(messages.compactMap { $0.value.flatMap { Int(String(decoding: $0, as: UTF8.self)) } } == expected, "\(topic)")
            }
        }
    }

    @Test("many sends at once through a local queue of 4 records all complete, each offset once", .timeLimit(.minutes(1)))
    func sendsWaitingForQueueSpace() async throws {
        try await withBroker(topics: ["narrow": 2]) { broker in
            var configuration = producerConfiguration(broker)
            configuration.maxQueuedMessages = 4  // most of the 400 sends wait for space
            let producer = try KafkaProducer(configuration: configuration, logger: testLogger("producer"))
            let reports = try await withThrowingTaskGroup(of: KafkaDeliveryReport.self) { group in
                for i in 0..<400 {
                    group.addTask { try await producer.send(KafkaRecord(topic: "narrow", key: "k\(i)", value: Data("v\(i)".utf8))) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            await producer.close()
            #expect(reports.count == 400)
            #expect(reports.allSatisfy { $0.error == nil })
            #expect(Set(reports.map { "\($0.partition)/\($0.offset)" }).count == 400)
        }
    }

    @Test("send awaits the delivery report, whose offset is the consumed offset")
    func sendReportsOffsets() async throws {
        try await withBroker(topics: ["acks": 3]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            var offsetsByKey: [String: (Int32, Int64)] = [:]
            for i in 0..<300 {
                let report = try await producer.send(KafkaRecord(topic: "acks", key: "k\(i)", value: Data("v\(i)".utf8)))
                #expect(report.error == nil)
                offsetsByKey["k\(i)"] = (report.partition, report.offset)
            }
            await producer.close()
            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
            try await assignAll(consumer, topic: "acks", partitions: 3)
            let messages = try await consume(consumer, count: 300)
            await consumer.close()
            #expect(messages.count == 300)
            for message in messages {
                let key = String(decoding: message.key!, as: UTF8.self)
                #expect(offsetsByKey[key]?.0 == message.partition)
                #expect(offsetsByKey[key]?.1 == message.offset)
            }
        }
    }

    @Test("tombstones arrive as null values, headers intact")
    func tombstones() async throws {
        try await withBroker(topics: ["tomb": 1]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            let headers = [KafkaHeader(name: "georep-hlc", string: "123"), KafkaHeader(name: "empty", value: nil)]
            _ = try await producer.send(KafkaRecord(topic: "tomb", key: "row/1", value: Data("{}".utf8)))
            let report = try await producer.send(KafkaRecord(topic: "tomb", key: "row/1", value: nil, headers: headers))
            #expect(report.error == nil)
            _ = try await producer.send(KafkaRecord(topic: "tomb", key: nil, value: Data()))
            await producer.close()
            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
            try await assignAll(consumer, topic: "tomb", partitions: 1)
            let messages = try await consume(consumer, count: 3)
            await consumer.close()
            try #require(messages.count == 3)
            #expect(messages[0].value == Data("{}".utf8))
            #expect(messages[1].value == nil)
            #expect(messages[1].key == Data("row/1".utf8))
            #expect(messages[1].headers == headers)
            #expect(messages[2].key == nil)
            #expect(messages[2].value == Data())
        }
    }

    @Test("commit, then read the committed offsets back; watermarks match the records produced")
    func commitAndWatermarks() async throws {
        try await withBroker(topics: ["offsets": 4]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            var perPartition = [Int64](repeating: 0, count: 4)
            for i in 0..<400 {
                let partition = Int32(i % 4)
                let report = try await producer.send(KafkaRecord(topic: "offsets", partition: partition, key: "k", value: Data([UInt8(i % 256)])))
                #expect(report.offset == perPartition[Int(partition)])
                perPartition[Int(partition)] += 1
            }
            await producer.close()

            let group = "commit-test"
            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker, group: group), logger: testLogger("consumer"))
            for partition in 0..<Int32(4) {
                let marks = try await consumer.watermarks(topic: "offsets", partition: partition)
                #expect(marks == KafkaWatermarks(low: 0, high: 100))
            }
            let partitions = (0..<Int32(4)).map { TopicPartition(topic: "offsets", partition: $0) }
            let before = try await consumer.committedOffsets(for: partitions)
            #expect(before.values.allSatisfy { $0 == .invalid })
            let positions = partitions.map { TopicPartitionOffset($0, offset: KafkaOffset(Int64(10 + $0.partition))) }
            try await consumer.commit(positions)
            await consumer.close()

            // A new member of the group sees them, and starts there.
            let second = try KafkaConsumer(configuration: consumerConfiguration(broker, group: group), logger: testLogger("consumer"))
            let after = try await second.committedOffsets(for: partitions)
            for position in positions { #expect(after[position.topicPartition] == position.offset) }
            try await second.assign(partitions.map { TopicPartitionOffset($0, offset: .stored) })
            let messages = try await consume(second, count: 400 - 46)
            #expect(messages.count == 400 - 46)
            for partition in 0..<Int32(4) {
                #expect(messages.first { $0.partition == partition }?.offset == Int64(10 + partition))
            }
            await second.close()
        }
    }

    @Test("seek, pause and resume move and hold positions")
    func seekPauseResume() async throws {
        try await withBroker(topics: ["seek": 2]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            for i in 0..<200 {
                _ = try await producer.send(KafkaRecord(topic: "seek", partition: Int32(i % 2), key: nil, value: Data(String(i).utf8)))
            }
            await producer.close()
            let consumer = try KafkaConsumer(configuration: consumerConfiguration(broker), logger: testLogger("consumer"))
            try await assignAll(consumer, topic: "seek", partitions: 2)
            let zero = TopicPartition(topic: "seek", partition: 0)
            let one = TopicPartition(topic: "seek", partition: 1)
            try consumer.pause([one])
            let first = try await consume(consumer, count: 100, timeout: .seconds(10))
            #expect(first.count == 100)
            #expect(first.allSatisfy { $0.partition == 0 })
            try await consumer.seek([TopicPartitionOffset(zero, offset: KafkaOffset(90))])
            try consumer.resume([one])
            let rest = try await consume(consumer, count: 110, timeout: .seconds(10))
            #expect(rest.filter { $0.partition == 0 }.map(\.offset) == Array(90..<100))
            #expect(rest.filter { $0.partition == 1 }.count == 100)
            await consumer.close()
        }
    }

    @Test("a position that fell out of the log is reported, not skipped")
    func offsetOutOfRange() async throws {
        try await withBroker(topics: ["short": 1]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            _ = try await producer.send(KafkaRecord(topic: "short", key: nil, value: Data("x".utf8)))
            await producer.close()
            var configuration = consumerConfiguration(broker)
            configuration.offsetReset = .error
            let consumer = try KafkaConsumer(configuration: configuration, logger: testLogger("consumer"))
            try await consumer.assign([TopicPartitionOffset(topic: "short", partition: 0, offset: KafkaOffset(50))])
            let error = await #expect(throws: KafkaError.self) {
                _ = try await consume(consumer, count: 1, timeout: .seconds(10))
            }
            #expect([KafkaError.Code.autoOffsetReset, .offsetOutOfRange].contains(error?.code))
            await consumer.close()
        }
    }

    @Test("an unknown configuration property fails with an error naming it")
    func unknownProperty() throws {
        var producer = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:1")
        producer.properties["no.such.property"] = "1"
        let error = #expect(throws: KafkaError.self) { try KafkaProducer(configuration: producer, logger: testLogger("p")) }
        #expect(error?.message.contains("no.such.property") == true)
        #expect(error?.code == .invalidArgument)

        var consumer = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", groupID: "g")
        consumer.properties["fetch.wait.max.ms"] = "not-a-number"
        let consumerError = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: consumer, logger: testLogger("c")) }
        #expect(consumerError?.message.contains("fetch.wait.max.ms") == true)
    }

    @Test("CreateTopics is refused by the development broker with a clear error")
    func createTopicsUnsupported() async throws {
        try await withBroker { broker in
            let admin = try KafkaAdmin(bootstrapServers: broker.bootstrapServers, logger: testLogger("admin"))
            await #expect(throws: KafkaError.self) {
                try await admin.createTopic("made-by-admin", partitions: 3, timeout: .seconds(5))
            }
            await admin.close()
        }
    }
}

@Suite("partitioner")
struct PartitionerTests {
    @Test("KafkaPartitioner names the partition the producer puts a keyed record in")
    func partitionOfKey() async throws {
        try await withBroker(topics: ["keyed": 6]) { broker in
            let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger("producer"))
            for number in 0..<60 {
                let key = "user_profile/\(number)"
                let report = try await producer.send(KafkaRecord(topic: "keyed", key: key, value: nil))
                #expect(report.partition == KafkaPartitioner.partition(of: key, partitions: 6), "\(key)")
            }
            await producer.close()
        }
    }
}

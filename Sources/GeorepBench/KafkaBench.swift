import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepKafka
import Logging

/// `georep bench kafka`: the Kafka wrapper's produce and consume throughput next to kcat's,
/// on one development broker, in one run.
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Produce and consume throughput of georep's Kafka wrapper next to kcat's on the development broker."
    )

    @Option(help: "Records per run.")
    var records: Int = 1_000_000

    @Option(help: "Value size in bytes.")
    var size: Int = 200

    @Option(help: "Partitions per topic (the development broker keeps about 5 MiB per partition: keep records*size/partitions below that).")
    var partitions: Int = 64

    @Option(help: "Both producers' local queue bound in KiB (queue.buffering.max.kbytes).")
    var queueKilobytes: Int = KafkaProducerConfiguration(bootstrapServers: "").maxQueuedKilobytes

    @Option(help: "Both producers' local queue bound in records (queue.buffering.max.messages).")
    var queueMessages: Int = KafkaProducerConfiguration(bootstrapServers: "").maxQueuedMessages

    @Option(help: "Rounds; each direction reports the median.")
    var rounds: Int = 3

    @Option(help: "Measure only this direction (produce or consume).")
    var only: Direction?

    enum Direction: String, ExpressibleByArgument, CaseIterable {
        case produce, consume
    }

    @Option(help: "The kcat executable.")
    var kcat: String = "kcat"

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard records > 0, size > 0, partitions > 0, rounds > 0 else {
            throw ValidationError("records, size, partitions and rounds must be positive")
        }
        let perPartition = records * (size + 70) / partitions
        if perPartition > 5 * 1024 * 1024 * 9 / 10 {
            throw ValidationError("\(records) records of \(size) bytes over \(partitions) partitions exceed the development broker's 5 MiB per partition: add partitions")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench")
        try await DevelopmentBroker.with(brokers: 1, logger: logger) { broker in
            try await measure(broker: broker, logger: logger)
        }
    }

    /// The benchmark on `broker`.
    private func measure(broker: DevelopmentBroker, logger: Logger) async throws {
        let value = String(repeating: "x", count: size)
        print("georep bench kafka: \(records) records of \(size) bytes, \(partitions) partitions, \(rounds) rounds, development broker \(broker.bootstrapServers), librdkafka \(Librdkafka.version)")
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("georep-bench-\(getpid()).txt")
        try Data(String(repeating: value + "\n", count: records).utf8).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }

        var steps = Steps()
        for round in 1...rounds {
            let kcatTopic = "bench.kcat.\(round)"
            let swiftTopic = "bench.swift.\(round)"
            try broker.createTopic(kcatTopic, partitions: partitions)
            try broker.createTopic(swiftTopic, partitions: partitions)
            // Produce: kcat from a file of lines and the wrapper, with the same producer settings.
            // Both spread keyless records evenly (no sticky partitioning): librdkafka otherwise
            // sends a 10 ms window of records to one partition, and a fast producer overfills the
            // development broker's 5 MiB per partition, which then drops the oldest records.
            // Each side goes first in every other round: the development broker keeps every
            // topic in memory, so whoever produces second writes into a fuller process.
            let kcatFirst = round % 2 == 1
            let measuresGeorepProduce = only != .consume
            if !kcatFirst, measuresGeorepProduce {
                try await steps.measure("georep produce") {
                    try await produce(broker: broker, topic: swiftTopic, value: Data(value.utf8), logger: logger)
                }
            }
            try await steps.measure("kcat produce") {
                try runProcess(kcat, [
                    "-q", "-P", "-b", broker.bootstrapServers, "-t", kcatTopic, "-l", input.path,
                    "-X", "enable.idempotence=true", "-X", "sticky.partitioning.linger.ms=0",
                    "-X", "queue.buffering.max.kbytes=\(queueKilobytes)", "-X", "queue.buffering.max.messages=\(queueMessages)",
                ])
            }
            if kcatFirst, measuresGeorepProduce {
                try await steps.measure("georep produce") {
                    try await produce(broker: broker, topic: swiftTopic, value: Data(value.utf8), logger: logger)
                }
            }
            try await checkHeld(broker: broker, topics: measuresGeorepProduce ? [kcatTopic, swiftTopic] : [kcatTopic], logger: logger)
            if only == .produce { continue }
            // Consume: the same topic (written by kcat), kcat to /dev/null, then the wrapper.
            try await steps.measure("kcat consume") {
                try runProcess(kcat, [
                    "-q", "-C", "-b", broker.bootstrapServers, "-t", kcatTopic, "-o", "beginning", "-e",
                    "-f", "%s\n", "-X", "fetch.wait.max.ms=10",
                ])
            }
            try await steps.measure("georep consume") {
                try await consume(broker: broker, topic: kcatTopic, logger: logger)
            }
        }

        print("")
        // The machine's speed drifts between rounds; the ratio within each round (kcat and the
        // wrapper measured seconds apart) is the steadier comparison. CPU seconds count this
        // process (the development broker, and the wrapper) and kcat's process.
        print("direction   kcat rec/s   georep rec/s   georep/kcat   per-round georep/kcat: median (lowest-highest)   CPU s: kcat  georep")
        for direction in Direction.allCases where only == nil || only == direction {
            let direction = direction.rawValue
            let kcatSeconds = steps.seconds["kcat \(direction)"]!
            let swiftSeconds = steps.seconds["georep \(direction)"]!
            let kcatRate = Double(records) / median(kcatSeconds)
            let swiftRate = Double(records) / median(swiftSeconds)
            let ratios = zip(kcatSeconds, swiftSeconds).map { 100 * $0 / $1 }
            print(
                direction.padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%11.0f   %12.0f   %10.0f%%   %20.0f%% (%.0f%%-%.0f%%)   %17.2f  %6.2f",
                       kcatRate, swiftRate, 100 * swiftRate / kcatRate, median(ratios), ratios.min()!, ratios.max()!,
                       median(steps.cpu["kcat \(direction)"]!), median(steps.cpu["georep \(direction)"]!))
            )
        }
    }

    /// Wall and CPU seconds of each step, per round.
    private struct Steps {
        var seconds: [String: [Double]] = [:]
        var cpu: [String: [Double]] = [:]

        mutating func measure(_ name: String, _ body: () async throws -> Void) async throws {
            let cpuBefore = cpuSeconds() + cpuSeconds(children: true)
            seconds[name, default: []].append(try await timed(body))
            cpu[name, default: []].append(cpuSeconds() + cpuSeconds(children: true) - cpuBefore)
        }
    }

    /// Checks that the broker holds every record produced to `topics`.
    private func checkHeld(broker: DevelopmentBroker, topics: [String], logger: Logger) async throws {
        let watcher = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "georep-bench"),
            logger: logger
        )
        for topic in topics {
            let held = try await recordsHeld(topic: topic, watcher: watcher)
            guard held == records else {
                await watcher.close()
                throw ValidationError("the development broker holds \(held) of the \(records) records produced to \(topic) (it keeps about 5 MiB per partition): add partitions")
            }
        }
        await watcher.close()
    }
    /// Produces `records` records of `value` and waits for their acknowledgements. Like kcat,
    /// it only counts failures (logged by the producer); ``checkHeld`` then checks that the
    /// broker holds every record.
    private func produce(broker: DevelopmentBroker, topic: String, value: Data, logger: Logger) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers)
        configuration.properties["sticky.partitioning.linger.ms"] = "0"
        configuration.maxQueuedKilobytes = queueKilobytes
        configuration.maxQueuedMessages = queueMessages
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        try await producer.enqueue(contentsOf: (0..<records).lazy.map { _ in KafkaRecord(topic: topic, key: nil, value: value) })
        try await producer.flush(timeout: .seconds(120))
        await producer.close()
    }

    /// The records the partitions of `topic` hold now: Σ (high − low watermark).
    private func recordsHeld(topic: String, watcher: KafkaConsumer) async throws -> Int {
        var held: Int64 = 0
        for partition in 0..<Int32(partitions) {
            let marks = try await watcher.watermarks(topic: topic, partition: partition)
            held += marks.high - marks.low
        }
        return Int(held)
    }

    private func consume(broker: DevelopmentBroker, topic: String, logger: Logger) async throws {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "georep-bench"),
            logger: logger
        )
        try await consumer.assign((0..<partitions).map { TopicPartitionOffset(topic: topic, partition: Int32($0), offset: .beginning) })
        var count = 0
        var bytes = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while count < records, ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(100))
            count += batch.count
            for message in batch { bytes += message.value?.count ?? 0 }
        }
        await consumer.close()
        guard count == records, bytes == records * size else {
            throw ValidationError("consumed \(count) of \(records) records (\(bytes) bytes)")
        }
    }
}

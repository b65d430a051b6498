import ArgumentParser
import Foundation
import GeorepKafka
import Logging
import Synchronization

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

    @Option(help: "The kcat executable.")
    var kcat: String = "kcat"

    @OptionGroup var common: CommonOptions

    /// Lines kcat gets beyond `records`.
    private var kcatPadding: Int { 1000 }

    func validate() throws {
        guard records > 0, size > 0, partitions > 0 else { throw ValidationError("records, size and partitions must be positive") }
        let perPartition = records * (size + 70) / partitions
        if perPartition > 5 * 1024 * 1024 * 9 / 10 {
            throw ValidationError("\(records) records of \(size) bytes over \(partitions) partitions exceed the development broker's 5 MiB per partition: add partitions")
        }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench")
        let broker = try DevelopmentBroker(brokers: 1, logger: logger)
        defer { broker.shutdown() }
        let kcatTopic = "bench.kcat"
        let swiftTopic = "bench.swift"
        try broker.createTopic(kcatTopic, partitions: partitions)
        try broker.createTopic(swiftTopic, partitions: partitions)
        let value = String(repeating: "x", count: size)
        print("georep bench kafka: \(records) records of \(size) bytes, \(partitions) partitions, development broker \(broker.bootstrapServers), librdkafka \(Librdkafka.version)")

        let watcher = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "georep-bench"),
            logger: logger
        )
        // Produce: kcat reading lines on standard input, then the wrapper, same producer settings.
        // kcat 1.7.1 exits at the end of its input without waiting for delivery (records are
        // lost), so it is timed until the broker holds every record, its input still open.
        // Both spread keyless records evenly (no sticky partitioning), so that no partition
        // outgrows the development broker's 5 MiB.
        // kcat holds the last lines of an open input back, so it gets some extra lines.
        let lines = Data(String(repeating: value + "\n", count: records + kcatPadding).utf8)
        let kcatProduce = try await timedAsync {
            try await produceWithKcat(broker: broker, topic: kcatTopic, lines: lines, watcher: watcher)
        }
        let swiftProduce = try await timedAsync { try await produce(broker: broker, topic: swiftTopic, value: Data(value.utf8), logger: logger) }
        for topic in [kcatTopic, swiftTopic] {
            let held = try await recordsHeld(topic: topic, watcher: watcher)
            guard held >= records, held <= records + kcatPadding else {
                throw ValidationError("the development broker holds \(held) of the \(records) records produced to \(topic) (it keeps about 5 MiB per partition): add partitions")
            }
        }
        await watcher.close()

        // Consume: the same topic (written by kcat), kcat to /dev/null, then the wrapper.
        let kcatConsume = try await timedAsync {
            try runProcess(kcat, ["-q", "-C", "-b", broker.bootstrapServers, "-t", kcatTopic, "-o", "beginning", "-e", "-f", "%s\n", "-X", "fetch.wait.max.ms=10"])
        }
        let swiftConsume = try await timedAsync { try await consume(broker: broker, topic: kcatTopic, logger: logger) }

        let rows = [
            ("produce", kcatProduce, swiftProduce),
            ("consume", kcatConsume, swiftConsume),
        ]
        print("")
        print("direction   kcat rec/s   georep rec/s   georep/kcat")
        for (name, kcatSeconds, swiftSeconds) in rows {
            let kcatRate = Double(records) / kcatSeconds
            let swiftRate = Double(records) / swiftSeconds
            print(
                name.padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%11.0f   %12.0f   %10.0f%%", kcatRate, swiftRate, 100 * swiftRate / kcatRate)
            )
        }
    }

    private func produce(broker: DevelopmentBroker, topic: String, value: Data, logger: Logger) async throws {
        let delivered = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers)
        configuration.properties["sticky.partitioning.linger.ms"] = "0"
        let producer = try KafkaProducer(configuration: configuration, logger: logger) { reports in
            let failures = reports.count { $0.error != nil }
            failed.add(failures, ordering: .relaxed)
            delivered.add(reports.count - failures, ordering: .relaxed)
        }
        for _ in 0..<records {
            try await producer.enqueue(KafkaRecord(topic: topic, key: nil, value: value))
        }
        try await producer.flush(timeout: .seconds(120))
        await producer.close()
        guard delivered.load(ordering: .relaxed) == records else {
            throw ValidationError("only \(delivered.load(ordering: .relaxed)) of \(records) records delivered (\(failed.load(ordering: .relaxed)) failed)")
        }
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

    /// Feeds `lines` to a kcat producer and returns once the broker holds all the records.
    private func produceWithKcat(broker: DevelopmentBroker, topic: String, lines: Data, watcher: KafkaConsumer) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [kcat, "-q", "-P", "-b", broker.bootstrapServers, "-t", topic, "-X", "enable.idempotence=true", "-X", "sticky.partitioning.linger.ms=0"]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        let writer = Thread { input.fileHandleForWriting.write(lines) }
        writer.start()
        var held = 0
        var lastProgress = ContinuousClock.now
        while held < records {
            let now = try await recordsHeld(topic: topic, watcher: watcher)
            if now > held { lastProgress = .now }
            held = now
            guard ContinuousClock.now - lastProgress < .seconds(10), process.isRunning else {
                throw ValidationError("kcat delivered only \(held) of \(records) records")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
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
        guard count >= records, bytes == count * size else {
            throw ValidationError("consumed \(count) of \(records) records (\(bytes) bytes)")
        }
    }
}

/// Runs `body` and returns the seconds it took.
private func timedAsync(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).seconds
}

/// Runs an executable found on PATH to completion, its standard output discarded.
func runProcess(_ executable: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ValidationError("\(executable) \(arguments.joined(separator: " ")) exited with status \(process.terminationStatus)")
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

import Foundation
import GeorepKafka
import Testing

/// Runs the built `georep dev-broker` and kcat against each other and against the wrapper.
@Suite("georep dev-broker with kcat", .tags(.process), .startsProcesses)
struct DevBrokerCommandTests {
    /// The `georep` executable built beside the test bundle.
    static var georepExecutable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("georep")
    }

    /// Runs a command to completion and returns its standard output; standard input from `input`.
    static func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("dev-broker prints its bootstrap servers; kcat lists its brokers; kcat and the wrapper read each other's records; SIGTERM stops it")
    func devBrokerWithKcat() async throws {
        let process = Process()
        process.executableURL = Self.georepExecutable
        process.arguments = ["dev-broker", "--brokers", "3", "--topics", "interop:3", "--log-level", "warning"]
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The first line of standard output is the bootstrap servers.
        var firstLine = Data()
        while !firstLine.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            try #require(!chunk.isEmpty, "dev-broker exited before printing its bootstrap servers")
            firstLine += chunk
        }
        let bootstrap = String(decoding: firstLine, as: UTF8.self).split(separator: "\n")[0]
        #expect(bootstrap.split(separator: ",").count == 3)
        #expect(bootstrap.allSatisfy { !$0.isWhitespace })

        let metadata = try Self.run(["kcat", "-b", String(bootstrap), "-L"])
        #expect(metadata.status == 0)
        #expect(metadata.output.contains("3 brokers:"))
        #expect(metadata.output.contains("topic \"interop\" with 3 partitions"))

        // kcat produces, the wrapper consumes.
        let produced = try Self.run(
            ["kcat", "-b", String(bootstrap), "-P", "-t", "interop", "-K", ":", "-H", "georep-origin=kcat"],
            input: "user_profile/1:{\"a\":1}\nuser_profile/2:{\"a\":2}\nuser_profile/3:{\"a\":3}\n"
        )
        #expect(produced.status == 0)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: String(bootstrap), groupID: "interop")
        configuration.sessionTimeoutMilliseconds = 6000
        let consumer = try KafkaConsumer(configuration: configuration, logger: testLogger("consumer"))
        try await assignAll(consumer, topic: "interop", partitions: 3)
        let fromKcat = try await consume(consumer, count: 3, timeout: .seconds(20))
        await consumer.close()
        #expect(Set(fromKcat.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }) == ["user_profile/1", "user_profile/2", "user_profile/3"])
        #expect(fromKcat.allSatisfy { $0.headers.string(named: "georep-origin") == "kcat" })
        #expect(fromKcat.contains { $0.value == Data("{\"a\":2}".utf8) })

        // The wrapper produces, kcat consumes.
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: String(bootstrap)), logger: testLogger("producer"))
        for i in 4...5 {
            let report = try await producer.send(KafkaRecord(
                topic: "interop", key: "user_profile/\(i)", value: Data("{\"a\":\(i)}".utf8),
                headers: [KafkaHeader(name: "georep-hlc", string: "42")]
            ))
            #expect(report.error == nil)
        }
        await producer.close()
        let consumed = try Self.run([
            "kcat", "-b", String(bootstrap), "-C", "-t", "interop", "-o", "beginning", "-e", "-q",
            "-f", "%k|%s|%h\n", "-X", "fetch.wait.max.ms=10",
        ])
        #expect(consumed.status == 0)
        let lines = Set(consumed.output.split(separator: "\n").map(String.init))
        #expect(lines.contains("user_profile/4|{\"a\":4}|georep-hlc=42"))
        #expect(lines.contains("user_profile/5|{\"a\":5}|georep-hlc=42"))
        #expect(lines.count == 5)

        // SIGTERM stops it cleanly.
        process.terminate()
        let stopDeadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < stopDeadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }
}

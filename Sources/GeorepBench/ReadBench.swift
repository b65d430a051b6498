import GeorepLog
import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepEngine
import GeorepModel
import GeorepNode
import Logging

/// `georep bench read`: what a read-your-writes token costs when it is already applied.
struct ReadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Latency of a token-checked local read next to a plain local read.",
        discussion: """
            Three regions in this process (development brokers, no added round trip). Rows are written \
            at us-east-1; once eu-west-1 has applied them, reads at eu-west-1 alternate between a plain \
            GET and a GET carrying the write's georep-token (applied, so served locally). Both go \
            through HTTP on loopback; the difference is the token's cost. Target: p99 under 1 ms extra.
            """
    )

    @Option(help: "Reads of each kind.")
    var reads: Int = 5_000

    @Option(help: "Rows written and read.")
    var rows: Int = 500

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard reads > 0, rows > 0 else { throw ValidationError("reads and rows must be positive") }
    }

    func run() async throws {
        let logger = try common.bootstrapLogging(label: "georep.bench", defaultLevel: .warning)
        let directory = try BenchDeployment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let deployment = try await LocalDeployment(directory: directory, roundTripMillis: 0, logger: logger)
        let client = NodeHTTPClient()
        do {
            try await measure(deployment, client)
        } catch {
            print("bench read failed: \(error)")
        }
        try? await client.shutdown()
        await deployment.shutdown()
    }

    private func measure(_ deployment: LocalDeployment, _ client: NodeHTTPClient) async throws {
        var tokens: [String] = []
        for row in 0..<rows {
            let reply = try await client.send("PUT", deployment.address("us-east-1"), NodeHTTPClient.rowPath("user_profile", "\(row)"), json: ["bio": "benchmark"])
            guard reply.status == 200, let token = reply.token else { throw ValidationError("write failed: \(reply.status) \(reply.error ?? "")") }
            tokens.append(token)
        }
        let reader = deployment.address("eu-west-1")
        // Every token applied at the reader before timing.
        let applier = deployment.nodes["eu-west-1"]!.engine.applier
        for token in tokens.compactMap(WriteToken.init) {
            let position = SourcePosition(topic: Topics.changes(token.region), partition: token.partition, offset: token.offset)
            guard await applier.waitUntilApplied(past: position, timeout: .seconds(60)) else { throw ValidationError("eu-west-1 did not apply \(token)") }
        }
        var plain: [Double] = []
        var checked: [Double] = []
        var notLocal = 0
        for number in 0..<(2 * reads) {
            let row = number / 2 % rows
            let path = NodeHTTPClient.rowPath("user_profile", "\(row)")
            let withToken = number % 2 == 1
            let start = ContinuousClock.now
            let reply = try await client.send("GET", reader, path, headers: withToken ? ["georep-token": tokens[row]] : [:])
            let millis = (ContinuousClock.now - start).fractionalSeconds * 1000
            guard reply.status == 200 else { throw ValidationError("read failed: \(reply.status)") }
            if withToken {
                checked.append(millis)
                if reply.servedBy != "local" { notLocal += 1 }
            } else {
                plain.append(millis)
            }
        }
        plain.sort()
        checked.sort()
        print("georep bench read: \(reads) plain and \(reads) token-checked GETs at eu-west-1 over HTTP on loopback (tokens already applied)")
        print("  kind            p50 ms   p99 ms   mean ms")
        for (name, values) in [("plain", plain), ("with token", checked)] {
            print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0))  \(format(percentile(values, 0.5)))  \(format(percentile(values, 0.99)))  \(format(values.reduce(0, +) / Double(values.count)))")
        }
        let extra = percentile(checked, 0.99) - percentile(plain, 0.99)
        print("  extra p99 of the token check: \(format(extra)) ms (target < 1 ms: \(extra < 1 ? "met" : "NOT met")); reads not served locally: \(notLocal)")
    }

    private func format(_ value: Double) -> String { String(format: "%7.3f", value) }
}

import Foundation
import GeorepModel
import Testing

/// The README's curl examples, run as printed (only the node ports differ) against three
/// `georep node` processes.
@Suite("README examples", .serialized, .tags(.process), .startsProcesses)
struct ReadmeTests {
    /// The fenced block after the marker `<!-- readme-test: name -->` in `docs/http-api.md`,
    /// where the curl examples of the HTTP API live.
    static func block(_ name: String) throws -> String {
        let page = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/http-api.md"), encoding: .utf8)
        let marker = try #require(page.range(of: "<!-- readme-test: \(name) -->"), "docs/http-api.md has no block \(name)")
        let rest = page[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        return String(rest[open.upperBound..<close.lowerBound])
    }

    static func bash(_ script: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("the README's curl examples work as printed, and its bad requests get the 4xx and error they show")
    func curlExamples() async throws {
        try await ProcessDeployment.with { deployment, _ in
            func localized(_ text: String) -> String {
                deployment.addressMap.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
            }

            // Every command succeeds (curl fails on an HTTP error status) and the token read sees the write.
            let ok = try Self.bash("set -euo pipefail\ncurl() { command curl -sS --fail-with-body \"$@\"; echo; }\n" + localized(try Self.block("curl-ok")))
            #expect(ok.status == 0, "the README's examples failed:\n\(ok.output)")
            #expect(ok.output.contains("moved to Lisbon"), "the read with the token did not return the write:\n\(ok.output)")
            #expect(ok.output.contains(#""items":["sku-1","sku-2"]"#))
            #expect(ok.output.contains(#""views":3"#))
            #expect(ok.output.contains("georep_events_applied_total"))

            // Each bad request gets the status and the error its comment shows.
            for line in try Self.block("curl-4xx").split(separator: "\n") where line.hasPrefix("curl") {
                let parts = line.components(separatedBy: "# ")
                let expected = try #require(parts.last?.split(separator: " ", maxSplits: 1).map(String.init))
                let reply = try Self.bash(localized(parts[0]))
                #expect(reply.output.contains("HTTP/1.1 \(expected[0])"), "\(line):\n\(reply.output)")
                #expect(reply.output.contains(#"{"error":"#) && reply.output.contains(expected[1]), "\(line):\n\(reply.output)")
            }
        }
    }
}

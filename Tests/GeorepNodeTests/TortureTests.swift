import Foundation
import GeorepTestSupport
import Testing

/// Issue 16: the fault harness runs from the test suite, every fault kind at least once.
@Suite("georep torture", .serialized, .tags(.process), .startsProcesses)
struct TortureTests {
    @Test("a short single-primary torture with eu-west-1 on PostgreSQL injects every kind of fault at least once and finds no anomaly")
    func shortRun() async throws {
        try await TestPostgres.withScratchDatabase { url in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-torture-test-\(UUID().uuidString.prefix(6))")
            let run = try GeorepProcess(
                ["torture", "--duration", "45", "--seed", "16", "--topology", "single-primary", "--postgres", url, "--directory", directory.path],
                logFile: directory.appendingPathExtension("log"))
            let status = await run.waitForExit(timeout: .seconds(420))
            let output = run.allLines.joined(separator: "\n")
            print(output)
            #expect(status == 0, "torture found anomalies or failed:\n\(output)")
            #expect(output.contains("no anomalies"))
            for kind in ["kill", "pause", "broker", "rtt", "errors", "skew", "switchover", "failover"] {
                let row = run.allLines.first { $0.hasPrefix(kind + " ") }?.split(separator: " ") ?? []
                #expect(row.count >= 3 && (Int(row[1]) ?? 0) >= 1, "fault \(kind) injected at least once: \(row)")
            }
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("history.jsonl").path))
            if status == 0 { try? FileManager.default.removeItem(at: directory) }
        }
    }
}

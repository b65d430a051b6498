import ArgumentParser
import Foundation
import GeorepCommandSupport
import GeorepModel
import GeorepTorture

/// `georep torture`: the fault harness.
struct TortureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Run three regions under faults and check that no acknowledged write is lost and every region converges.",
        discussion: """
            Starts three regions on loopback, each broker and each node its own georep process; \
            clients write through every region with every kind of operation while a nemesis \
            injects faults on a schedule drawn from --seed (node kill and restart, pause, broker \
            down, round-trip time, request errors, clock skew under faketime, and in \
            single-primary a planned switchover and an unplanned failover). Then it heals \
            everything, waits for convergence, checks the history against every region's rows \
            and the logs, prints a summary and exits 1 when it found an anomaly. The history is \
            written as JSON lines into --directory.
            """
    )

    @Option(help: "Seconds of writes and faults.")
    var duration: Int = 60

    @Option(help: "Seed of the fault schedule and the clients' choices.")
    var seed: UInt64 = 1

    @Option(help: "active-active or single-primary.")
    var topology: String = "active-active"

    @Option(help: "An empty PostgreSQL database (postgres://...) for eu-west-1's store; default SQLite.")
    var postgres: String?

    @Option(help: "Fault kinds, comma-separated (\(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))); default every kind the topology has.")
    var faults: String?

    @Option(help: "Clients (spread over the regions).")
    var clients: Int = 6

    @Option(help: "Operations per second of each client.")
    var rate: Double = 5

    @Option(help: "Where the logs, stores and history go (default: a new directory in $TMPDIR).")
    var directory: String?

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard Topology(rawValue: topology) != nil else { throw ValidationError("--topology must be active-active or single-primary, not '\(topology)'") }
        _ = try parsedFaults()
    }

    private func parsedFaults() throws -> [FaultKind]? {
        guard let faults else { return nil }
        let kinds = try faults.split(separator: ",").map { name in
            guard let kind = FaultKind(rawValue: String(name)) else {
                throw ValidationError("--faults: unknown kind '\(name)'; kinds: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return kind
        }
        if topology != Topology.singlePrimary.rawValue, let kind = kinds.first(where: { $0 == .switchover || $0 == .failover }) {
            throw ValidationError("--faults: \(kind.rawValue) needs --topology single-primary")
        }
        return kinds
    }

    func run() async throws {
        _ = try common.bootstrapLogging(label: "georep.torture", defaultLevel: .warning)
        let folder = directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("georep-torture-\(seed)-\(UUID().uuidString.prefix(6))")
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var options = Torture.Options(directory: folder, executable: executable)
        options.duration = .seconds(duration)
        options.seed = seed
        options.topology = Topology(rawValue: topology) ?? .activeActive
        options.postgresURL = postgres
        options.faults = try parsedFaults()
        options.clients = clients
        options.rate = rate
        let report = try await Torture(options: options).run { line in printFlushed(line) }
        printFlushed(report.summary)
        if !report.isClean { throw ExitCode(1) }
    }
}

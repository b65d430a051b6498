public import Foundation
public import GeorepModel
import GeorepNode

/// `georep torture`: a Jepsen-style fault harness. It starts three regions (each broker and each
/// node its own process), writes through every region with every kind of operation while a
/// nemesis injects faults, heals everything, waits for the regions to converge, and checks the
/// history against the final state (see ``AnomalyClass``).
public struct Torture: Sendable {
    /// What a run does.
    public struct Options: Sendable {
        /// How long the clients write and the nemesis injects faults.
        public var duration: Duration = .seconds(60)
        /// Draws the fault schedule and the clients' choices.
        public var seed: UInt64 = 1
        /// `active-active` or `single-primary` (us-east-1 first).
        public var topology: Topology = .activeActive
        /// A PostgreSQL database (empty) for eu-west-1's store; nil: SQLite everywhere.
        public var postgresURL: String?
        /// The fault kinds; nil: every kind that applies to the topology.
        public var faults: [FaultKind]?
        /// Clients, two per region by default.
        public var clients = 6
        /// Operations per second of each client.
        public var rate: Double = 5
        /// Where the processes' logs, stores and the history go.
        public var directory: URL
        /// The `georep` executable to start.
        public var executable: String

        /// Options for a run in `directory` with `executable`.
        public init(directory: URL, executable: String) {
            self.directory = directory
            self.executable = executable
        }
    }

    /// What a run found.
    public struct Report: Sendable {
        /// The printed summary.
        public var summary: String
        /// Anomalies found, by class.
        public var anomalies: [String: Int]
        /// Faults injected (that succeeded), by kind.
        public var faults: [String: Int]
        /// Where the history was written (JSON lines).
        public var historyPath: String

        /// Whether the run found no anomaly.
        public var isClean: Bool { anomalies.values.allSatisfy { $0 == 0 } }
    }

    let options: Options

    /// A run with `options`.
    public init(options: Options) {
        self.options = options
    }

    /// Runs the harness; `progress` gets a line now and then.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Report {
        let kinds = options.faults ?? FaultKind.applicable(to: options.topology)
        let deployment = try await TortureDeployment(
            directory: options.directory, executable: options.executable, topology: options.topology, partitions: 3,
            postgresURL: options.postgresURL)
        let history = History()
        let workload = Workload(deployment: deployment, history: history)
        let nemesis = Nemesis(deployment: deployment, history: history)
        do {
            for region in TortureDeployment.regions { try await deployment.startNode(region) }
            progress("deployment up in \(options.directory.path): 3 brokers, 3 nodes (\(options.topology.rawValue)\(options.postgresURL == nil ? "" : ", eu-west-1 on PostgreSQL"))")
            // Enough steps to fill the duration; the nemesis stops with the clients.
            let steps = Nemesis.schedule(kinds: kinds, seed: options.seed, count: Int(options.duration / .seconds(1)))
            let clients = Task { await workload.run(clients: options.clients, rate: options.rate, seed: options.seed) }
            let faults = Task { await nemesis.run(steps) }
            try await Task.sleep(for: options.duration)
            nemesis.stop()
            await faults.value
            workload.stop()
            await clients.value
            progress("writes stopped after \(history.allOperations.count) operations and \(history.allFaults.count) faults; healing")
            await nemesis.healAll()
            let checker = Checker(deployment: deployment, history: history.allOperations, client: NodeHTTPClient(timeout: .seconds(10)))
            let differing = try await checker.awaitConvergence(timeout: .seconds(120))
            progress(differing.isEmpty ? "converged; checking" : "\(differing.count) rows still differ; checking")
            let anomalies = try await checker.check(differing: differing)
            try? await checker.client.shutdown()
            await workload.shutdown()
            let historyPath = options.directory.appendingPathComponent("history.jsonl")
            try history.write(to: historyPath)
            await deployment.shutdown()
            return Self.report(history: history, anomalies: anomalies, kinds: kinds, options: options, historyPath: historyPath.path)
        } catch {
            workload.stop()
            nemesis.stop()
            await workload.shutdown()
            await deployment.shutdown()
            throw error
        }
    }

    private static func report(history: History, anomalies: [Anomaly], kinds: [FaultKind], options: Options, historyPath: String) -> Report {
        var lines: [String] = []
        lines.append("georep torture: seed \(options.seed), \(options.topology.rawValue), \(Int(options.duration / .seconds(1))) s, \(options.clients) clients at \(options.rate)/s\(options.postgresURL == nil ? "" : ", eu-west-1 on PostgreSQL")")
        lines.append("")
        let operations = history.allOperations
        lines.append(pad(["operation", "ok", "failed", "unknown"], [12, 8, 8, 8]))
        for kind in Operation.Kind.allCases {
            let of = operations.filter { $0.kind == kind }
            lines.append(pad([kind.rawValue] + [Operation.Outcome.ok, .failed, .unknown].map { outcome in "\(of.filter { $0.outcome == outcome }.count)" }, [12, 8, 8, 8]))
        }
        lines.append(pad(["total"] + [Operation.Outcome.ok, .failed, .unknown].map { outcome in "\(operations.filter { $0.outcome == outcome }.count)" }, [12, 8, 8, 8]))
        lines.append("")
        let faults = history.allFaults
        var injected: [String: Int] = [:]
        lines.append(pad(["fault", "injected", "failed"], [12, 10, 8]))
        for kind in kinds {
            let of = faults.filter { $0.kind == kind.rawValue }
            injected[kind.rawValue] = of.filter(\.succeeded).count
            lines.append(pad([kind.rawValue, "\(of.filter(\.succeeded).count)", "\(of.filter { !$0.succeeded }.count)"], [12, 10, 8]))
        }
        for failure in faults.filter({ !$0.succeeded }).prefix(3) { lines.append("  \(failure.kind) at \(failure.region): \(failure.detail ?? "")") }
        lines.append("")
        var counts: [String: Int] = [:]
        lines.append(pad(["anomaly", "count"], [42, 6]) + "  first examples")
        for kind in AnomalyClass.allCases {
            let of = anomalies.filter { $0.kind == kind }
            counts[kind.rawValue] = of.count
            lines.append(pad([kind.rawValue, "\(of.count)"], [42, 6]) + (of.isEmpty ? "" : "  " + of.prefix(2).map(\.detail).joined(separator: "; ")))
        }
        lines.append("")
        lines.append(anomalies.isEmpty ? "no anomalies" : "\(anomalies.count) anomalies")
        lines.append("history: \(historyPath)")
        return Report(summary: lines.joined(separator: "\n"), anomalies: counts, faults: injected, historyPath: historyPath)
    }

    private static func pad(_ cells: [String], _ widths: [Int]) -> String {
        zip(cells, widths).map { cell, width in cell.count >= width ? cell + " " : cell + String(repeating: " ", count: width - cell.count) }.joined()
    }
}

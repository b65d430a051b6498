import ArgumentParser
import Foundation
import GeorepKafka
import GeorepModel
import Logging

/// The deployment the end-to-end benchmarks run: regions on one development broker, each
/// with an SQLite store in `directory`, and the `user_profile` LWW table of
/// `schemas/examples/georep.yaml` (built here, so the benchmark needs no file).
enum BenchDeployment {
    /// The table every benchmark writes.
    static let table = "user_profile"

    static func config(regions: [String], kafka: String, directory: URL, partitions: Int) -> GeorepConfig {
        let profile = TableSchema(
            name: table, key: ["user_id"], merge: .lww,
            columns: [
                ColumnSchema(name: "user_id", type: .integer),
                ColumnSchema(name: "display_name", type: .text),
                ColumnSchema(name: "bio", type: .text),
            ])
        let regionConfigs = regions.enumerated().map { index, id in
            RegionConfig(
                id: id, kafka: kafka, http: HostPort(host: "127.0.0.1", port: UInt16(8081 + index)),
                store: .sqlite(path: directory.appendingPathComponent("\(id).sqlite").path))
        }
        return GeorepConfig(topology: .activeActive, primary: nil, regions: regionConfigs, tables: [profile], partitions: partitions)
    }

    /// A fresh temporary directory for the stores.
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("georep-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}

/// The wall clock in milliseconds with sub-millisecond precision (HLC physical time is its floor).
func wallClockMillis() -> Double {
    Date().timeIntervalSince1970 * 1000
}

/// The `fraction` percentile of sorted `values` (nearest rank).
func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up))
    return sorted[min(sorted.count - 1, max(0, rank - 1))]
}

/// The median of `values` (not empty).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Runs `body` and returns the seconds it took.
func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).fractionalSeconds
}

/// CPU seconds (user and system) used so far by this process's threads, or by its
/// terminated child processes (`children`).
func cpuSeconds(children: Bool = false) -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    let who = __rusage_who_t((children ? RUSAGE_CHILDREN : RUSAGE_SELF).rawValue)
    #else
    let who = children ? RUSAGE_CHILDREN : RUSAGE_SELF
    #endif
    getrusage(who, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU seconds (user and system) used so far by this process's threads named `name` (from
/// `/proc/self/task`, so Linux only; 0 elsewhere or when none is named so).
func threadCPUSeconds(named name: String) -> Double {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return 0 }
    let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    for task in tasks {
        guard let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
              comm.trimmingCharacters(in: .newlines) == name,
              let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
              let nameEnd = stat.lastIndex(of: ")") else { continue }
        // After the name: state, then fields 4 to 13, then utime (14) and stime (15), in ticks.
        let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
        total += (user + system) / ticksPerSecond
    }
    return total
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


/// A benchmark that runs on a development broker of its own, its stores in a temporary directory.
protocol BrokerBenchmark {
    /// Runs the benchmark on `broker`, its stores in `directory`, and prints its figures.
    func measure(broker: DevelopmentBroker, directory: URL, logger: Logger) async throws
}

extension BrokerBenchmark {
    /// Runs the benchmark on a new development broker and prints its figures; `georep bench` calls it too.
    func measure(logger: Logger) async throws {
        let directory = try BenchDeployment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await DevelopmentBroker.with(brokers: 1, logger: logger) { broker in
            try await measure(broker: broker, directory: directory, logger: logger)
        }
    }
}

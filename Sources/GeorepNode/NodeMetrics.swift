import CoreMetrics
import Foundation
public import GeorepEngine
import Metrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Synchronization

/// The metrics of one region node (`docs/http-api.md#get-metrics`), recorded through
/// swift-metrics into a registry of the node's own, so that several nodes in one process
/// (`georep demo`, tests) keep apart.
///
/// Counters that mirror the applier's progress are advanced from it by ``refresh(progress:conflicts:)``,
/// which the lag sampler calls periodically and `GET /metrics` calls before rendering, so a scrape
/// is always current.
public final class NodeMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let region: String

    private let eventsApplied: Counter
    private let deadLetters: Counter
    private let conflicts: Counter
    private let lostEvents: Counter
    private let writeDuration: Metrics.Timer
    private let acceptingWrites: Gauge
    private let epoch: Gauge
    private let clockOffset: Gauge
    private let clockSafe: Gauge
    private let mirrored = Mutex(Mirrored())
    private let perSource = Mutex<[String: LagGauges]>([:])
    private let writes = Mutex<[String: Counter]>([:])

    private struct Mirrored {
        var eventsApplied = 0
        var deadLetters = 0
        var conflicts = 0
        var lostEvents: Int64 = 0
    }

    private struct LagGauges {
        let millis: Gauge
        let records: Gauge
    }

    /// Makes the metrics of `region`'s node.
    public init(region: String) {
        self.region = region
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["georep_write_duration_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        let target = [("region", region)]
        eventsApplied = Counter(label: "georep_events_applied_total", dimensions: target, factory: factory)
        deadLetters = Counter(label: "georep_dead_letters_total", dimensions: target, factory: factory)
        conflicts = Counter(label: "georep_conflicts_total", dimensions: target, factory: factory)
        lostEvents = Counter(label: "georep_events_lost_total", dimensions: target, factory: factory)
        writeDuration = Metrics.Timer(label: "georep_write_duration_seconds", dimensions: target, factory: factory)
        acceptingWrites = Gauge(label: "georep_accepting_writes", dimensions: target, factory: factory)
        epoch = Gauge(label: "georep_epoch", dimensions: target, factory: factory)
        clockOffset = Gauge(label: "georep_clock_offset_ms", dimensions: target, factory: factory)
        clockSafe = Gauge(label: "georep_clock_safe", dimensions: target, factory: factory)
        clockSafe.record(1)
    }

    /// Advances the counters that mirror the applier and the store to their current totals.
    public func refresh(progress: ApplierProgress, conflicts conflictTotal: Int) {
        let lost = progress.lostRanges.reduce(Int64(0)) { $0 + ($1.upTo - $1.from) }
        mirrored.withLock { seen in
            eventsApplied.increment(by: max(0, progress.eventsApplied - seen.eventsApplied))
            deadLetters.increment(by: max(0, progress.deadLetters - seen.deadLetters))
            conflicts.increment(by: max(0, conflictTotal - seen.conflicts))
            lostEvents.increment(by: max(0, lost - seen.lostEvents))
            seen.eventsApplied = max(seen.eventsApplied, progress.eventsApplied)
            seen.deadLetters = max(seen.deadLetters, progress.deadLetters)
            seen.conflicts = max(seen.conflicts, conflictTotal)
            seen.lostEvents = max(seen.lostEvents, lost)
        }
    }

    /// Records the replication lag of this region behind `source`.
    public func recordLag(source: String, millis: Int64, records: Int64) {
        let gauges = perSource.withLock { gauges in
            if let existing = gauges[source] { return existing }
            let dimensions = [("source", source), ("target", region)]
            let made = LagGauges(
                millis: Gauge(label: "georep_replication_lag_ms", dimensions: dimensions, factory: factory),
                records: Gauge(label: "georep_replication_lag_records", dimensions: dimensions, factory: factory))
            gauges[source] = made
            return made
        }
        gauges.millis.record(millis)
        gauges.records.record(records)
    }

    /// Counts an acknowledged write and its duration.
    public func recordWrite(operation: String, duration: Duration) {
        let counter = writes.withLock { counters in
            if let existing = counters[operation] { return existing }
            let made = Counter(label: "georep_writes_total", dimensions: [("region", region), ("operation", operation)], factory: factory)
            counters[operation] = made
            return made
        }
        counter.increment()
        writeDuration.recordNanoseconds(duration.nanoseconds)
    }

    /// Records whether the node accepts writes and its writer epoch.
    public func recordRole(acceptingWrites accepting: Bool, epoch currentEpoch: UInt64) {
        acceptingWrites.record(accepting ? 1 : 0)
        epoch.record(Int64(clamping: currentEpoch))
    }

    /// Records this node's clock offset from the other regions' nodes (this one's minus
    /// theirs, the median) and whether it takes writes by it.
    public func recordClock(offsetMillis: Int64, isSafe: Bool) {
        clockOffset.record(offsetMillis)
        clockSafe.record(isSafe ? 1 : 0)
    }

    /// The Prometheus text exposition of every metric.
    public func prometheusText() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        registry.emit(into: &buffer)
        return buffer
    }
}

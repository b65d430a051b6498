import Foundation
import GeorepModel
import GeorepNode

/// The demo's summary: events written and applied per region, lag percentiles, conflicts, and
/// the convergence check of every table across the regions.
struct DemoReport {
    let deployment: LocalDeployment
    let outcome: DemoWorkload.Outcome
    let lags: LagRecorder

    /// Prints the summary; returns whether every region converged.
    func print() async throws -> Bool {
        let regions = LocalDeployment.regions
        let width = regions.map(\.count).max() ?? 10
        func pad(_ text: String) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        Swift.print("   \(pad("region"))  written  failed  applied  conflicts  dead letters")
        for region in regions {
            let node = deployment.nodes[region]!
            let progress = node.engine.applier.progress
            let conflicts = try await node.store.conflictCount()
            Swift.print("   \(pad(region))  \(column(outcome.written[region] ?? 0, 7))  \(column(outcome.failed[region] ?? 0, 6))  \(column(progress.eventsApplied, 7))  \(column(conflicts, 9))  \(column(progress.deadLetters, 12))")
        }
        if let failure = outcome.lastFailure { Swift.print("   last failed write: \(failure)") }
        let lag = lags.summary()
        Swift.print("   replication lag (HLC of a write → applied in another region, \(lag.count) samples): p50 \(lag.p50) ms, p99 \(lag.p99) ms, max \(lag.max) ms")

        var converged = true
        for table in ["user_profile", "cart"] {
            var snapshots: [[[String: JSONValue]]] = []
            for region in regions { snapshots.append(try await deployment.nodes[region]!.store.snapshot(table: table)) }
            let same = snapshots.dropFirst().allSatisfy { $0 == snapshots[0] }
            converged = converged && same
            Swift.print("   \(table): \(same ? "identical in all regions" : "DIFFERENT between regions") (\(snapshots.map { String($0.count) }.joined(separator: "/")) rows)")
        }
        let (countersOK, itemsOK) = try await checkCRDTs()
        converged = converged && countersOK && itemsOK
        Swift.print("   cart.views counters equal the sum of all increments everywhere: \(countersOK ? "yes" : "NO")")
        Swift.print("   cart.items hold every item added in any region everywhere: \(itemsOK ? "yes" : "NO")")
        Swift.print(converged ? "\nall regions converged" : "\nREGIONS DID NOT CONVERGE")
        return converged
    }

    private func checkCRDTs() async throws -> (counters: Bool, items: Bool) {
        var countersOK = true
        var itemsOK = true
        for region in LocalDeployment.regions {
            let rows = try await deployment.nodes[region]!.store.snapshot(table: "cart")
            var byCart: [String: [String: JSONValue]] = [:]
            for row in rows { if let id = row["cart_id"]?.stringValue { byCart[id] = row } }
            for (cart, views) in outcome.views where byCart[cart]?["views"]?.intValue != views { countersOK = false }
            for (cart, items) in outcome.items {
                let stored = Set(byCart[cart]?["items"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                if !items.isSubset(of: stored) { itemsOK = false }
            }
        }
        return (countersOK, itemsOK)
    }

    private func column(_ value: Int, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - String(value).count)) + String(value)
    }
}

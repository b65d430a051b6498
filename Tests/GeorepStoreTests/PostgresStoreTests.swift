import GeorepLog
import Foundation
import GeorepModel
import GeorepStore
import GeorepTestSupport
import Testing

/// What only the PostgreSQL store does; `ReplicaStoreTests` checks what every store does.
@Suite struct PostgresStoreTests {
    let topic = "georep.us-east-1.changes"

    @Test func openingAppliesTheNumberedMigrationsOnceAndCreatesTablesAndViews() async throws {
        try await ScratchStore.with(.postgres) { scratch in
            try await scratch.close(try await scratch.open())
            _ = try await scratch.open()
            #expect(try await scratch.strings("SELECT CAST(version AS TEXT), name FROM georep_migrations ORDER BY version") == [["1", "georep tables"], ["2", "dead letter claims"], ["3", "rebuilt fences"]])
            let tables = try await scratch.strings("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").compactMap(\.first)
            for name in ["georep_region_config", "georep_replication_status", "georep_offsets", "georep_conflicts", "georep_clock",
                         "georep_pinned_directory", "georep_dead_letters", "georep_rows_cart", "georep_rows_ledger"] {
                #expect(tables.contains(name), "missing \(name)")
            }
            let columns = try await scratch.strings("""
                SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'cart' ORDER BY ordinal_position
                """)
            #expect(columns == [["cart_id", "text"], ["items", "json"], ["saved", "json"], ["views", "bigint"], ["note", "text"]])
        }
    }

    @Test func aMalformedURLOrAnUnreachableServerIsAClearError() async throws {
        await #expect(throws: StoreError.unsupportedStore("the PostgreSQL URL for host db.example names no user (postgres://USER:PASSWORD@db.example/DATABASE)")) {
            try await makeReplicaStore(at: .postgres(url: "postgres://db.example/georep"), config: StoreFixtures.config)
        }
        do {
            _ = try await makeReplicaStore(at: .postgres(url: "postgres://georep:secret@127.0.0.1:1/georep"), config: StoreFixtures.config)
            Issue.record("a store opened on a closed port")
        } catch let error as StoreError {
            guard case let .unreachable(reason) = error else { throw error }
            #expect(reason.hasPrefix("cannot connect to PostgreSQL at postgres://georep@127.0.0.1:1/georep"))
            #expect(!reason.contains("secret"), "the password stays out of errors")
        }
    }

    /// Two appliers of one region briefly hold the same partition during a rebalance and apply
    /// the same records at once: the offsets row decides, and every counter increment counts once.
    @Test func overlappingAppliersOfOnePartitionApplyEachEventOnce() async throws {
        try await ScratchStore.with(.postgres) { scratch in
            let stores = [try await scratch.open(), try await scratch.open()]
            let events = (0..<400).map { index in
                SourcedEvent(
                    ChangeEvent(origin: "us-east-1", table: "cart", key: ["cart_id": .string("c\(index % 7)")], op: .increment,
                                hlc: HLCTimestamp(millis: 1_000 + UInt64(index), logical: 0), epoch: 1, columns: ["views": 1]),
                    source: SourcePosition(topic: topic, partition: 3, offset: Int64(index)))
            }
            let outcomes = try await withThrowingTaskGroup(of: [BatchOutcome].self) { group in
                for store in stores {
                    group.addTask {
                        var outcomes: [BatchOutcome] = []
                        for start in stride(from: 0, to: events.count, by: 25) {
                            outcomes.append(try await store.apply(batch: Array(events[start..<min(events.count, start + 25)])))
                        }
                        return outcomes
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let applied = outcomes.reduce(0) { $0 + $1.changed + $1.unchanged }
            let skipped = outcomes.reduce(0) { $0 + $1.skipped }
            #expect(applied == events.count)
            #expect(skipped == events.count)
            #expect(try await stores[0].positions() == [TopicPartition(topic: topic, partition: 3): 400])
            var total: Int64 = 0
            for row in try await stores[1].snapshot(table: "cart") { total += row["views"]?.intValue ?? 0 }
            #expect(total == 400)
        }
    }

    /// A transaction that fails for a passing reason (here a serialization failure raised once)
    /// is tried again; other failures are not (`anInterruptedBatchLeavesNeitherRowsNorOffsets`).
    @Test func aBatchIsRetriedAfterASerializationFailure() async throws {
        try await ScratchStore.with(.postgres) { scratch in
            let store = try await scratch.open()
            let first = ChangeEvent(origin: "us-east-1", table: "user_profile", key: ["user_id": 1], op: .upsert,
                                    hlc: HLCTimestamp(millis: 100, logical: 0), epoch: 1, columns: ["display_name": "Ann"])
            _ = try await store.apply(batch: [SourcedEvent(first, source: SourcePosition(topic: topic, partition: 0, offset: 0))])
            try await scratch.execute(
                sqlite: "",
                postgres: "CREATE SEQUENCE attempts",
                """
                CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF nextval('attempts') = 1 THEN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$
                """,
                "CREATE TRIGGER fail_once BEFORE UPDATE ON georep_offsets FOR EACH ROW EXECUTE FUNCTION fail_once()")
            var second = first
            second.hlc = HLCTimestamp(millis: 200, logical: 0)
            second.columns = ["display_name": "Bo"]
            let outcome = try await store.apply(batch: [SourcedEvent(second, source: SourcePosition(topic: topic, partition: 0, offset: 1))])
            #expect(outcome.changed == 1)
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1])?["display_name"] == "Bo")
            #expect(try await store.positions() == [TopicPartition(topic: topic, partition: 0): 2])
            // The first attempt failed at its first update of the offset row (the lock); the
            // second updated it twice (the lock, then the new position).
            #expect(try await scratch.strings("SELECT CAST(last_value AS TEXT) FROM attempts") == [["3"]], "tried twice")
        }
    }
}

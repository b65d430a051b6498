import GeorepLog
import Foundation
import GeorepModel
import GeorepStore
import GRDB
import Testing

/// What only the SQLite store does; `ReplicaStoreTests` checks what every store does.
@Suite struct SQLiteStoreTests {
    let directory: TemporaryDirectory
    let path: String
    let topic = "georep.eu-west-1.changes"

    init() throws {
        directory = try TemporaryDirectory()
        path = directory.path("store.sqlite")
    }

    private func open(_ config: GeorepConfig = StoreFixtures.config) throws -> SQLiteStore {
        try SQLiteStore(path: path, config: config)
    }

    private func upsert(_ user: Int64, _ name: String, at millis: UInt64, from origin: String = "eu-west-1") -> ChangeEvent {
        ChangeEvent(origin: origin, table: "user_profile", key: ["user_id": .int(user)], op: .upsert,
                    hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1, columns: ["display_name": .string(name)])
    }

    private func sourced(_ event: ChangeEvent, offset: Int64, partition: Int32 = 0) -> SourcedEvent {
        SourcedEvent(event, source: SourcePosition(topic: topic, partition: partition, offset: offset))
    }

    @Test func openingCreatesTheTablesInWALModeAndUsersCanSelectTheView() async throws {
        let store = try open()
        _ = try await store.apply(batch: [sourced(upsert(1, "Ann", at: 100), offset: 0), sourced(upsert(2, "Bo", at: 101), offset: 1)])
        _ = try await store.apply(batch: [SourcedEvent(ChangeEvent(origin: "eu-west-1", table: "user_profile", key: ["user_id": 2], op: .delete, hlc: HLCTimestamp(millis: 102, logical: 0), epoch: 1))])
        try await store.close()
        try withRawDatabase(path) { db in
            #expect(try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal")
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'georep_%' ORDER BY name")
            for name in ["georep_region_config", "georep_replication_status", "georep_offsets", "georep_conflicts", "georep_clock", "georep_pinned_directory"] {
                #expect(tables.contains(name), "missing \(name)")
            }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM user_profile")
            #expect(rows.count == 1, "the deleted row is hidden")
            #expect(rows.first?.columnNames.map { $0 } == ["user_id", "display_name", "bio"])
            #expect(rows.first?["display_name"] == "Ann")
            let cartColumns = try Row.fetchAll(db, sql: "PRAGMA table_info(georep_rows_cart)").map { $0["name"] as String }
            #expect(cartColumns == ["cart_id", "items", "saved", "views", "note", "georep_hlc", "georep_origin", "georep_deleted", "georep_state"])
        }
    }

    @Test func theFactoryOpensTheConfiguredSQLiteFileInANewDirectory() async throws {
        let nested = directory.path("data/deeper/region.sqlite")
        let store = try await makeReplicaStore(at: .sqlite(path: nested), config: StoreFixtures.config)
        _ = try await store.apply(batch: [SourcedEvent(upsert(1, "Ann", at: 10))])
        #expect(FileManager.default.fileExists(atPath: nested))
        try await store.close()
    }

    @Test func theWALIsCopiedBackAndStartedOverOffTheWritersPath() async throws {
        var settings = SQLiteStore.Settings()
        settings.walRestartPages = 100
        let store = try SQLiteStore(path: path, config: StoreFixtures.config, settings: settings)
        let bio = String(repeating: "x", count: 2_000)
        var offset: Int64 = 0
        for round in 0..<40 {
            var batch: [SourcedEvent] = []
            for user in 0..<200 {
                var event = upsert(Int64(round * 200 + user), "n", at: UInt64(1_000 + offset))
                event.columns["bio"] = .string(bio)
                batch.append(sourced(event, offset: offset))
                offset += 1
            }
            _ = try await store.apply(batch: batch)
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        // 8,000 rows of 2 KB: about 16 MB went through the WAL. Commits never checkpoint, so
        // the rows reached the database file through the checkpointer, and the WAL was restarted
        // instead of holding them all.
        let size = { (file: String) in ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0 }
        #expect(size(path) > 12_000_000, "database file \(size(path)) bytes")
        #expect(size(path + "-wal") < 6_000_000, "WAL \(size(path + "-wal")) bytes")
        #expect(try await store.snapshot(table: "user_profile").count == 8_000)
        try await store.close()
    }
}

import Foundation
import GeorepModel
import GeorepStore
import GRDB
import Synchronization

/// The benchmark table as a plain SQLite table, written without georep: the lower limit the
/// benchmarks put next to georep's store writes. The same last-writer-wins upsert, with none
/// of georep's merge state, decoding, Kafka or threads around it.
struct PlainSQLiteTable {
    let pool: DatabasePool

    /// Changes a stored row only for a newer HLC, as georep's plain LWW upsert does.
    static let upsertSQL = """
        INSERT INTO user_profile (user_id, display_name, bio, georep_hlc, georep_origin) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, bio = excluded.bio,
            georep_hlc = excluded.georep_hlc, georep_origin = excluded.georep_origin
        WHERE excluded.georep_hlc > georep_hlc
        """

    /// Creates the table in a new file at `path`: WAL mode, synchronous=NORMAL, georep's page
    /// cache, and SQLite's own checkpoints, inline, every `autocheckpointPages` of WAL.
    init(path: String, autocheckpointPages: Int) throws {
        let cacheSizeKiB = SQLiteStore.Settings().cacheSizeKiB
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -\(cacheSizeKiB)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autocheckpointPages)")
        }
        pool = try DatabasePool(path: path, configuration: configuration)  // WAL mode
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE user_profile (user_id INTEGER NOT NULL, display_name TEXT, bio TEXT,
                    georep_hlc INTEGER NOT NULL, georep_origin TEXT NOT NULL, PRIMARY KEY (user_id))
                """)
        }
    }

    /// Upserts a row with `statement` (prepared from ``upsertSQL``).
    static func upsert(_ statement: Statement, key: Int64, name: String, bio: String, hlc: Int64, origin: String) throws {
        try statement.execute(arguments: [key, name, bio, hlc, origin])
    }

    func rowCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM user_profile") ?? 0 }
    }
}

/// The store writes of `georep bench lag`'s load without georep: one thread per region
/// upserts into its own plain table at the benchmark's pace, every 5 ms two transactions,
/// like a node's. The first holds the region's new writes (the Writer's local apply); the
/// second holds the other regions' writes, the region's own writes again (as the Applier
/// reads them back from its topic: unchanged rows), and one row of applied offsets and one of
/// the clock's high-water mark (as georep stores with each batch).
struct PlainLagLoad {
    static let tick = Duration.milliseconds(5)

    var regions: Int
    var rate: Int
    var seconds: Int
    var keys: Int

    /// The CPU seconds the process used meanwhile and the seconds the load took (more than
    /// ``seconds`` when the threads could not keep the pace).
    struct Cost {
        var cpuSeconds: Double
        var seconds: Double
    }

    /// Runs the load on fresh files in `directory`.
    func run(directory: URL) throws -> Cost {
        let tables = try (0..<regions).map { index in
            try PlainSQLiteTable(path: directory.appendingPathComponent("plain-\(index).sqlite").path, autocheckpointPages: 1_000)
        }
        for table in tables {
            try table.pool.write { db in
                try db.execute(sql: "CREATE TABLE offsets (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL)")
                try db.execute(sql: "CREATE TABLE clock (id INTEGER PRIMARY KEY, high_water_mark INTEGER NOT NULL)")
                try db.execute(sql: "INSERT INTO clock VALUES (1, 0)")
            }
        }
        let failure = Mutex<(any Error)?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let cpu = cpuSeconds()
        let start = ContinuousClock.now
        for (index, table) in tables.enumerated() {
            let load = self
            Thread {
                do {
                    try load.write(into: table, region: index, start: start)
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
                finished.signal()
            }.start()
        }
        for _ in tables { finished.wait() }
        let cost = Cost(cpuSeconds: cpuSeconds() - cpu, seconds: (ContinuousClock.now - start).fractionalSeconds)
        for table in tables { try table.pool.close() }
        if let error = failure.withLock({ $0 }) { throw error }
        return cost
    }

    private func write(into table: PlainSQLiteTable, region: Int, start: ContinuousClock.Instant) throws {
        var generator = SplitMix64(state: UInt64(region + 1))
        let bio = String(repeating: "b", count: 200)
        var hlc: Int64 = 1
        var due = 0
        let ticks = Int(Duration.seconds(seconds) / Self.tick)
        for tick in 1...ticks {
            let target = Int(Double(rate) * (Self.tick * tick).fractionalSeconds)
            let count = target - due
            due = target
            var own: [(key: Int64, hlc: Int64)] = []
            try table.pool.write { db in
                let statement = try db.cachedStatement(sql: PlainSQLiteTable.upsertSQL)
                for _ in 0..<count {
                    hlc += 1
                    let key = Int64.random(in: 0..<Int64(keys), using: &generator)
                    own.append((key, hlc))
                    try PlainSQLiteTable.upsert(statement, key: key, name: "r\(region)-\(hlc)", bio: bio, hlc: hlc, origin: "own")
                }
            }
            try table.pool.write { db in
                let statement = try db.cachedStatement(sql: PlainSQLiteTable.upsertSQL)
                for _ in 0..<(count * (regions - 1)) {
                    hlc += 1
                    let key = Int64.random(in: 0..<Int64(keys), using: &generator)
                    try PlainSQLiteTable.upsert(statement, key: key, name: "remote-\(hlc)", bio: bio, hlc: hlc, origin: "remote")
                }
                for (key, written) in own {
                    try PlainSQLiteTable.upsert(statement, key: key, name: "r\(region)-\(written)", bio: bio, hlc: written, origin: "own")
                }
                try db.execute(sql: "INSERT INTO offsets VALUES (?, ?) ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset",
                               arguments: [tick % 6, hlc])
                try db.execute(sql: "UPDATE clock SET high_water_mark = max(high_water_mark, ?) WHERE id = 1", arguments: [hlc])
            }
            let wait = start + Self.tick * tick - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: wait.fractionalSeconds) }
        }
    }
}

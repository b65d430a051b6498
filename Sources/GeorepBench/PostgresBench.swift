import ArgumentParser
import Foundation
import GeorepModel
import GeorepStore
import Logging
import PostgresNIO

/// The PostgreSQL side of `georep bench apply`: scratch databases and the plain upsert loop
/// that the Applier into a `PostgresStore` is compared with.
enum PostgresBench {
    /// Runs `body` in a new database on `server`, dropped afterwards.
    static func scratch<T>(server: String, logger: Logger, _ body: (PostgresLocation) async throws -> T) async throws -> T {
        try await PostgresLocation(url: server).withScratchDatabase(prefix: "georep_bench", logger: logger, body)
    }

    /// The same upserts as a plain loop on one connection: 1,000 events per transaction, sent as
    /// one `INSERT … SELECT FROM json_to_recordset … ON CONFLICT DO UPDATE … WHERE excluded.georep_hlc
    /// > georep_hlc` (a key's last event of the chunk, as a bulk loader would). Returns its seconds.
    static func plainLoop(_ workload: ApplyWorkload, location: PostgresLocation, logger: Logger) async throws -> Double {
        try await location.withConnection(logger: logger) { connection in
            try await connection.query("""
                CREATE TABLE user_profile (user_id BIGINT PRIMARY KEY, display_name TEXT, bio TEXT,
                    georep_hlc BIGINT NOT NULL, georep_origin TEXT NOT NULL)
                """, logger: logger)
            let upsert = """
                INSERT INTO user_profile (user_id, display_name, bio, georep_hlc, georep_origin)
                SELECT * FROM json_to_recordset($1::json) AS r(user_id bigint, display_name text, bio text, georep_hlc bigint, georep_origin text)
                ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, bio = excluded.bio,
                    georep_hlc = excluded.georep_hlc, georep_origin = excluded.georep_origin
                WHERE excluded.georep_hlc > user_profile.georep_hlc
                """
            let start = ContinuousClock.now
            for first in stride(from: 0, to: workload.records, by: 1_000) {
                var lastOfKey: [Int32: Int] = [:]
                for index in first..<min(workload.records, first + 1_000) { lastOfKey[workload.keys[index]] = index }
                let rows = JSONValue.array(lastOfKey.values.sorted().map { index in
                    [
                        "user_id": .int(Int64(workload.keys[index])), "display_name": .string(workload.names[index]),
                        "bio": .string(workload.bio), "georep_hlc": .int(Int64(bitPattern: workload.hlc(index).rawValue)),
                        "georep_origin": .string(workload.origin),
                    ]
                })
                var binds = PostgresBindings()
                binds.append(rows.jsonText)
                try await connection.query("BEGIN", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: upsert, binds: binds), logger: logger)
                try await connection.query("COMMIT", logger: logger)
            }
            let seconds = (ContinuousClock.now - start).fractionalSeconds
            var count = 0
            for try await rows in try await connection.query("SELECT count(*) FROM user_profile", logger: logger).decode(Int.self) { count = rows }
            guard count == workload.distinctKeys else {
                throw ValidationError("the plain PostgreSQL loop left \(count) rows, expected \(workload.distinctKeys)")
            }
            return seconds
        }
    }
}

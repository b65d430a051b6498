import Foundation
import GeorepLog
import GeorepModel
import GRDB

/// Dead letters kept until the applier publishes them.
extension SQLiteStore {
    /// Claims dead letters not yet produced; see `ReplicaStore.claimDeadLetters(limit:lease:)`.
    /// The lease is kept in milliseconds of this machine's wall clock.
    public func claimDeadLetters(limit: Int, lease: Duration) async throws -> [DeadLetter] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let until = now + Int64(lease / .milliseconds(1))
        return try await pool.write { db in
            let letters = try Row.fetchAll(db, sql: #"""
                SELECT id, topic, partition, "offset", reason, payload FROM georep_dead_letters
                WHERE claimed_until IS NULL OR claimed_until <= ? ORDER BY id LIMIT ?
                """#, arguments: [now, max(0, limit)]).map { row in
                let topic: String? = row[1]
                let partition: Int32? = row[2]
                let offset: Int64? = row[3]
                let source = topic.flatMap { topic in
                    partition.flatMap { partition in offset.map { SourcePosition(topic: topic, partition: partition, offset: $0) } }
                }
                let payload: Data = row[5]
                return DeadLetter(id: row[0], source: source, reason: row[4], payload: Array(payload))
            }
            let claim = try db.cachedStatement(sql: "UPDATE georep_dead_letters SET claimed_until = ? WHERE id = ?")
            for letter in letters { try claim.execute(arguments: [until, letter.id]) }
            return letters
        }
    }

    /// Forgets dead letters that were produced.
    public func removeDeadLetters(ids: [Int64]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: "DELETE FROM georep_dead_letters WHERE id = ?")
            for id in ids { try statement.execute(arguments: [id]) }
        }
    }
}

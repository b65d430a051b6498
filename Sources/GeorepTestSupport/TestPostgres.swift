import Foundation
import GeorepStore
import Logging
import PostgresNIO

/// The PostgreSQL server of the tests: `GEOREP_TEST_POSTGRES_URL`, by default
/// `postgres://georep:georep@127.0.0.1:5432/georep` (what `scripts/postgres-test-server` starts).
/// Each test works in a scratch database of its own, created and dropped here.
///
/// - Important: Tests against PostgreSQL are never skipped: an unreachable server fails them
///   with a message saying how to start one.
public enum TestPostgres {
    /// The environment variable naming the server.
    public static let environmentVariable = "GEOREP_TEST_POSTGRES_URL"
    /// The server when the variable is unset.
    public static let defaultURL = "postgres://georep:georep@127.0.0.1:5432/georep"

    /// Why the tests cannot use PostgreSQL, and how to fix it.
    public struct Unavailable: Error, CustomStringConvertible {
        /// What went wrong and how to fix it.
        public var description: String
    }

    /// The server's URL (its database is where scratch databases are created from).
    public static var url: String {
        ProcessInfo.processInfo.environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultURL
    }

    private static var logger: Logger {
        var logger = Logger(label: "georep.test-postgres")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `body` with the URL of a new empty database, dropped afterwards.
    public static func withScratchDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        do {
            return try await PostgresLocation(url: url).withScratchDatabase(prefix: "georep_test", logger: logger) { try await body($0.url) }
        } catch let error as StoreError {
            guard case let .unreachable(reason) = error else { throw error }
            throw Unavailable(description: """
                the tests need PostgreSQL (\(environmentVariable), default \(defaultURL)): \(reason). \
                Start one with scripts/postgres-test-server (it installs Debian's postgresql when missing), or point \
                \(environmentVariable) at a server where that role may create databases.
                """)
        }
    }

    /// Runs statements, one after the other, in the database of `url`.
    public static func execute(_ statements: [String], url: String) async throws {
        let location = try PostgresLocation(url: url)
        for statement in statements { try await location.execute(statement, logger: logger) }
    }

    /// The rows of a query in the database of `url`, every value as text (cast in the query
    /// where needed) or nil.
    public static func strings(_ sql: String, url: String) async throws -> [[String?]] {
        try await PostgresLocation(url: url).withConnection(logger: logger) { connection in
            var rows: [[String?]] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                rows.append(try row.map { try $0.decode(String?.self) })
            }
            return rows
        }
    }
}

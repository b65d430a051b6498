import Foundation
public import Logging
public import PostgresNIO

extension PostgresLocation {
    /// Runs `body` on one new connection to this database, closed afterwards.
    ///
    /// - Throws: `StoreError.unreachable` naming the server (never the password) when it
    ///   cannot connect or log in; what `body` throws.
    public func withConnection<T>(logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: makeConnectionConfiguration(), id: 0, logger: logger)
        } catch {
            throw StoreError.unreachable("cannot connect to PostgreSQL at \(self): \(PostgresStore.reason(error))")
        }
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs statements, one after the other, in this database.
    public func execute(_ statements: String..., logger: Logger) async throws {
        try await withConnection(logger: logger) { connection in
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }

    /// Runs `body` with a new empty database on this server, named `<prefix>_<random>`, and
    /// drops it afterwards (tests and benchmarks; the role needs `CREATEDB`).
    public func withScratchDatabase<T>(prefix: String, logger: Logger, _ body: (PostgresLocation) async throws -> T) async throws -> T {
        let name = prefix + "_" + UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: "")
        try await execute("CREATE DATABASE \(quoted(name))", logger: logger)
        let drop = "DROP DATABASE IF EXISTS \(quoted(name)) WITH (FORCE)"
        do {
            let result = try await body(with(database: name))
            try await execute(drop, logger: logger)
            return result
        } catch {
            try? await execute(drop, logger: logger)
            throw error
        }
    }
}

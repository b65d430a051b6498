import Foundation
import GeorepModel
import GeorepStore
import GeorepTestSupport
import GRDB
import Synchronization
import Testing

/// The kinds of store every store test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// A place for one test's stores: a temporary SQLite file, or a scratch PostgreSQL database
/// (`TestPostgres`). Stores opened here are closed when the test's body ends.
final class ScratchStore: Sendable {
    let kind: StoreKind
    let location: StoreLocation
    private let opened = Mutex<[any ReplicaStore]>([])

    private init(kind: StoreKind, location: StoreLocation) {
        self.kind = kind
        self.location = location
    }

    /// Runs `body` with a new empty place for a store of `kind`, then closes what it opened and removes the place.
    static func with<T>(_ kind: StoreKind, _ body: (ScratchStore) async throws -> T) async throws -> T {
        switch kind {
        case .sqlite:
            let directory = try TemporaryDirectory()
            let scratch = ScratchStore(kind: kind, location: .sqlite(path: directory.path("store.sqlite")))
            defer { withExtendedLifetime(directory) {} }
            return try await scratch.closingStores { try await body(scratch) }
        case .postgres:
            return try await TestPostgres.withScratchDatabase { url in
                let scratch = ScratchStore(kind: kind, location: .postgres(url: url))
                return try await scratch.closingStores { try await body(scratch) }
            }
        }
    }

    /// Runs `body` with `count` places of `kind`.
    static func with<T>(_ kind: StoreKind, count: Int, _ body: ([ScratchStore]) async throws -> T) async throws -> T {
        func nest(_ gathered: [ScratchStore]) async throws -> T {
            guard gathered.count < count else { return try await body(gathered) }
            return try await with(kind) { try await nest(gathered + [$0]) }
        }
        return try await nest([])
    }

    private func closingStores<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            try await closeAll()
            return result
        } catch {
            try? await closeAll()
            throw error
        }
    }

    private func closeAll() async throws {
        let stores = opened.withLock { stores in
            defer { stores = [] }
            return stores
        }
        for store in stores { try await store.close() }
    }

    /// Opens the store (creating or migrating it) for `config`.
    func open(_ config: GeorepConfig = StoreFixtures.config) async throws -> any ReplicaStore {
        let store = try await makeReplicaStore(at: location, config: config)
        opened.withLock { $0.append(store) }
        return store
    }

    /// Closes a store opened here (to reopen it, or to look at its file).
    func close(_ store: any ReplicaStore) async throws {
        opened.withLock { stores in stores.removeAll { $0 as AnyObject === store as AnyObject } }
        try await store.close()
    }

    /// Raw SQL on the store's database, as a user or an operator would run it: the statements
    /// for this kind of store.
    func execute(sqlite: String, postgres: String...) async throws {
        switch location {
        case let .sqlite(path): try withRawDatabase(path) { db in try db.execute(sql: sqlite) }
        case let .postgres(url): try await TestPostgres.execute(postgres, url: url)
        }
    }

    /// The rows of a query valid in both SQL dialects, each value as text or nil.
    func strings(_ sql: String) async throws -> [[String?]] {
        switch location {
        case let .sqlite(path):
            try withRawDatabase(path) { db in
                try Row.fetchAll(db, sql: sql).map { row in
                    row.databaseValues.map { value in value.isNull ? nil : String.fromDatabaseValue(value) ?? value.description }
                }
            }
        case let .postgres(url):
            try await TestPostgres.strings(sql, url: url)
        }
    }
}

import GeorepEngine
import GeorepModel

/// Where a request is served: here, or by another region's node (a pinned row's home, the
/// primary, the region of a sticky user's recent write). The HTTP layer asks; these decide.
extension RegionNode {
    /// The region whose node must take a write this node cannot take (a pinned row's home, the
    /// primary); nil to write here.
    ///
    /// - Parameter isForwarded: whether another node forwarded the write here (it is never forwarded twice).
    /// - Throws: ``APIError`` when no region can take it through this node.
    func writeRoute(table: TableSchema, key: [String: JSONValue], operation: WriteRequest.Operation, isForwarded: Bool) async throws -> String? {
        if table.merge == .pinned {
            let home = try await pinnedHome(table: table, key: key, operation: operation)
            if home != region {
                if isForwarded { throw APIError(.conflict, "this row of region-pinned table \(table.name) lives in region \(home), not \(region)") }
                return home
            }
            return nil
        }
        let role = role
        guard !role.acceptsWrites else { return nil }
        if let primary = role.primary, primary != region, !isForwarded, !role.isFenced {
            return primary
        }
        throw APIError(.conflict, "region \(region) does not accept writes; the primary is \(role.primary ?? "unknown")")
    }

    /// The home region of a pinned row: the directory's, else the one the write names, else this one.
    private func pinnedHome(table: TableSchema, key: [String: JSONValue], operation: WriteRequest.Operation) async throws -> String {
        if let home = try await store.pinnedHome(table: table.name, key: key) { return home }
        guard case let .upsert(columns) = operation, let named = columns[TableSchema.homeRegionColumn] else { return region }
        guard let home = named.stringValue, config.region(id: home) != nil else {
            throw APIError(.unprocessableContent, "home_region \(named.jsonText) is not a region of this deployment; regions: \(config.regions.map(\.id).joined(separator: ", "))")
        }
        return home
    }

    /// The region that must serve a read instead of this one, if any: a pinned row's home (or,
    /// before the directory names it, the region a token says wrote it), or the region of the
    /// user's recent write.
    func readRoute(table: TableSchema, key: [String: JSONValue], tokens: [WriteToken], user: String?) async throws -> String? {
        if table.merge == .pinned {
            if let home = try await store.pinnedHome(table: table.name, key: key) { return home == region ? nil : home }
            return tokens.first { $0.region != region }?.region
        }
        if let user, let target = sticky?.region(for: user), target != region {
            return target
        }
        return nil
    }
}

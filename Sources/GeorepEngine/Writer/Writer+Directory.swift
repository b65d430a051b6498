public import GeorepModel

extension Writer {
    /// Publishes the directory entry of a region-pinned row of this region to the region's
    /// change topic: a `locate` event naming this region as the row's home, with no row
    /// content, so that every region can route requests for the row here (SPEC §3). The row
    /// itself goes only to the pinned topic.
    ///
    /// Idempotent: publishing it again only refreshes the same entry.
    public func publishLocation(table: TableSchema, key: [String: JSONValue]) async throws(WriteError) -> WriteReceipt {
        guard table.merge == .pinned else { throw .rejected(.wrongColumnType(table: table.name, column: TableSchema.homeRegionColumn, problem: "only rows of pinned tables have a home region")) }
        do {
            try table.checkKey(key)
        } catch {
            throw .rejected(error)
        }
        let event = ChangeEvent(
            origin: region, table: table.name, key: key, op: .locate, hlc: clock.now(), epoch: epoch,
            columns: [TableSchema.homeRegionColumn: .string(region)], writer: writerID)
        let topic = Topics.changes(region)
        let report = try await publish(event, table: table, to: topic)
        return WriteReceipt(
            token: WriteToken(region: region, partition: report.partition, offset: report.offset),
            position: SourcePosition(topic: topic, partition: report.partition, offset: report.offset), event: event)
    }
}

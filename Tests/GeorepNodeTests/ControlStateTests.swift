import GeorepLog
import Foundation
import GeorepEngine
import GeorepModel
import GeorepNode
import Testing

/// RegionConfig records of `georep.control`, the roles they give, and fence points.
@Suite struct ControlStateTests {
    static let config: GeorepConfig = {
        var config = GeorepConfig(
            topology: .singlePrimary, primary: "us-east-1",
            regions: ["us-east-1", "eu-west-1", "ap-southeast-1"].enumerated().map { index, id in
                RegionConfig(id: id, kafka: "k\(index):9092", http: HostPort(host: "127.0.0.1", port: UInt16(8081 + index)), store: .sqlite(path: "\(id).sqlite"))
            },
            tables: [])
        config.partitions = 2
        return config
    }()

    func region(_ id: String) -> RegionConfig { Self.config.region(id: id)! }

    @Test func withoutRecordsTheConfigurationDecides() {
        let state = ControlState()
        #expect(state.role(of: "us-east-1", config: Self.config) == NodeRole(primary: "us-east-1", epoch: 1, acceptsWrites: true))
        #expect(state.role(of: "eu-west-1", config: Self.config) == NodeRole(primary: "us-east-1", epoch: 1, acceptsWrites: false))
        #expect(Self.config.controlCluster == "k0:9092")
    }

    @Test func aDrainStopsThePrimarysWritesAndAPromotionFencesIt() throws {
        var state = ControlState()
        state.take(RegionControlRecord(region: region("us-east-1"), isPrimary: true, isAcceptingWrites: false, epoch: 1))
        #expect(state.role(of: "us-east-1", config: Self.config) == NodeRole(primary: "us-east-1", epoch: 1, acceptsWrites: false))

        let fence = FencePoint(epoch: 2, region: "us-east-1", newPrimary: "eu-west-1", offsets: [0: 10, 1: 7])
        // The new primary's record arrives first: the old primary's older record no longer counts.
        state.take(RegionControlRecord(region: region("eu-west-1"), isPrimary: true, isAcceptingWrites: true, epoch: 2, fence: fence))
        #expect(state.role(of: "us-east-1", config: Self.config) == NodeRole(primary: "eu-west-1", epoch: 2, acceptsWrites: false, isFenced: true))
        for other in ["us-east-1", "ap-southeast-1"] {
            state.take(RegionControlRecord(region: region(other), isPrimary: false, isAcceptingWrites: false, epoch: 2))
        }
        #expect(state.role(of: "eu-west-1", config: Self.config) == NodeRole(primary: "eu-west-1", epoch: 2, acceptsWrites: true))
        #expect(state.role(of: "ap-southeast-1", config: Self.config) == NodeRole(primary: "eu-west-1", epoch: 2, acceptsWrites: false))
        #expect(state.fences == [fence])
    }

    @Test func twoFailoversAtOnceLeaveOnePrimaryWhateverTheInterleaving() {
        // Both read epoch 1 with us-east-1 primary and write epoch 2: one promotes eu-west-1, the other ap-southeast-1.
        func batch(promoting target: String) -> [RegionControlRecord] {
            let fence = FencePoint(epoch: 2, region: "us-east-1", newPrimary: target, offsets: [0: 3, 1: 4])
            return Self.config.regions.filter { $0.id != target }.map {
                RegionControlRecord(region: $0, isPrimary: false, isAcceptingWrites: false, epoch: 2)
            } + [RegionControlRecord(region: region(target), isPrimary: true, isAcceptingWrites: true, epoch: 2, fence: fence)]
        }
        let first = batch(promoting: "eu-west-1")
        let second = batch(promoting: "ap-southeast-1")
        // The first batch whole before the second, the second before the first, and record by record.
        let interleavings = [first + second, second + first, zip(first, second).flatMap { [$0, $1] }, zip(second, first).flatMap { [$0, $1] }]
        for log in interleavings {
            var state = ControlState()
            state.take(RegionControlRecord(region: region("us-east-1"), isPrimary: true, isAcceptingWrites: true, epoch: 1))
            for record in log { state.take(record) }
            let winner = log.first { $0.isPrimary }!.region
            #expect(state.primary == winner)
            #expect(state.promotions[2] == winner)
            let accepting = Self.config.regions.map(\.id).filter { state.role(of: $0, config: Self.config).acceptsWrites }
            #expect(accepting == [winner], "\(log.map { "\($0.region):\($0.isPrimary)" })")
            #expect(state.fences.map(\.newPrimary) == [winner])
        }
        // A record older than a region's latest changes nothing.
        var state = ControlState()
        for record in first { state.take(record) }
        state.take(RegionControlRecord(region: region("us-east-1"), isPrimary: true, isAcceptingWrites: true, epoch: 1))
        #expect(state.role(of: "us-east-1", config: Self.config).acceptsWrites == false)
        #expect(state.primary == "eu-west-1")
    }

    @Test func recordsRoundTripThroughJSON() throws {
        let fence = FencePoint(epoch: 3, region: "eu-west-1", newPrimary: "ap-southeast-1", offsets: [0: 5, 1: 0])
        let record = RegionControlRecord(region: region("ap-southeast-1"), isPrimary: true, isAcceptingWrites: true, epoch: 3, fence: fence)
        let decoded = try #require(RegionControlRecord.decode(record.encoded()))
        #expect(decoded == record)
        #expect(decoded.fencePoint == fence)
        let json = try #require(JSONValue(parsing: Array(record.encoded())))
        #expect(json.objectValue?["is_accepting_writes"] == .bool(true))
        #expect(json.objectValue?["fence"]?.objectValue?["offsets"]?.objectValue?["0"] == .int(5))
        #expect(RegionControlRecord.decode(Data("{\"region\": 1}".utf8)) == nil)
    }

    @Test func aFenceRefusesOnlyOlderEpochsPastItsOffsets() {
        let fences = FenceRegistry()
        fences.install([FencePoint(epoch: 2, region: "us-east-1", newPrimary: "eu-west-1", offsets: [0: 10, 1: 7])])
        let topic = Topics.changes("us-east-1")
        func refusal(_ topic: String, _ partition: Int32, _ offset: Int64, epoch: UInt64, _ op: ChangeEvent.Operation = .upsert) -> String? {
            let event = ChangeEvent(origin: "us-east-1", table: "user_profile", key: ["user_id": 1], op: op,
                                    hlc: HLCTimestamp(millis: 1, logical: 0), epoch: epoch)
            return fences.refusal(of: event, at: SourcePosition(topic: topic, partition: partition, offset: offset))
        }
        #expect(refusal(topic, 0, 9, epoch: 1) == nil, "before the fence point")
        #expect(refusal(topic, 0, 10, epoch: 1)?.hasPrefix("fenced: epoch 1 event of us-east-1") == true)
        #expect(refusal(topic, 1, 7, epoch: 1) != nil)
        #expect(refusal(topic, 0, 50, epoch: 2) == nil, "the new epoch passes")
        #expect(refusal(Topics.changes("eu-west-1"), 0, 50, epoch: 1) == nil, "other regions' topics pass")
        #expect(refusal(topic, 0, 50, epoch: 1, .locate) == nil, "locate events pass")
        #expect(fences.isPastFencePoint(SourcePosition(topic: topic, partition: 0, offset: 10)))
        #expect(!fences.isPastFencePoint(SourcePosition(topic: topic, partition: 0, offset: 9)))
    }
}

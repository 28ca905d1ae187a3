// Drives the emulator with the official livekit-server-sdk (JSON transport) and prints one JSON object.
// Usage: LIVEKIT_URL=http://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret ROOM=r node contract.mjs
import {
  AccessToken,
  EgressClient,
  EncodedFileOutput,
  RoomServiceClient,
} from 'livekit-server-sdk';

const host = process.env.LIVEKIT_URL;
const key = process.env.LIVEKIT_API_KEY;
const secret = process.env.LIVEKIT_API_SECRET;
const room = process.env.ROOM || 'node-room';

function describeError(err) {
  return { name: err.name, status: err.status, code: err.code ?? null, message: err.message };
}

async function capture(fn) {
  try {
    await fn();
    return { ok: true };
  } catch (err) {
    return describeError(err);
  }
}

const rooms = new RoomServiceClient(host, key, secret);
const egress = new EgressClient(host, key, secret);
const out = {};

const created = await rooms.createRoom({ name: room, emptyTimeout: 120, metadata: 'from-node' });
out.createRoom = { sid: created.sid, name: created.name, emptyTimeout: created.emptyTimeout,
  creationTime: String(created.creationTime), metadata: created.metadata };
out.listRooms = (await rooms.listRooms()).map((r) => r.name);
out.listParticipants = (await rooms.listParticipants(room)).map((p) => ({ identity: p.identity, sid: p.sid }));

const info = await egress.startRoomCompositeEgress(room, {
  file: new EncodedFileOutput({ filepath: 'node/{room_name}-{time}' }),
}, { audioOnly: true });
out.startRoomCompositeEgress = { egressId: info.egressId, status: info.status, roomName: info.roomName,
  filename: info.fileResults[0]?.filename };
const stopped = await egress.stopEgress(info.egressId);
out.stopEgress = { status: stopped.status };

// A token without the roomCreate grant, sent through the SDK's own transport.
const limited = new RoomServiceClient(host, key, secret);
limited.authHeader = async () => {
  const token = new AccessToken(key, secret, { ttl: '10m' });
  token.addGrant({ roomList: true });
  return { Authorization: `Bearer ${await token.toJwt()}` };
};
out.missingGrant = await capture(() => limited.createRoom({ name: 'forbidden' }));
out.unknownRoom = await capture(() => rooms.deleteRoom('no-such-room'));
out.badToken = await capture(() => new RoomServiceClient(host, key, 'wrong-secret').listRooms());

console.log(JSON.stringify(out));

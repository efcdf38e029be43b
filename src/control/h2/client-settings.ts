// The client's SETTINGS frames (RFC 9113 §6.5): the frame and each value checked against the
// RFC's bounds, and the one setting our server follows, SETTINGS_INITIAL_WINDOW_SIZE, read out.
// Moving the open streams' windows by it, and the ACK, are the connection's job.
import { DEFAULT_MAX_FRAME_SIZE, ErrorCode, Flag, H2ProtocolError, MAX_WINDOW, Setting, type FrameHeader } from './frames.js';

/**
 * A SETTINGS frame from the client: null for an ACK, else the SETTINGS_INITIAL_WINDOW_SIZE in
 * force after it (`initialWindow` when it names none). A bad frame or value throws the
 * connection error the RFC gives it.
 */
export function readClientSettings(header: FrameHeader, payload: Buffer, initialWindow: number): number | null {
  if (header.streamId !== 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
  if (header.flags & Flag.ACK) {
    if (header.length !== 0) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
    return null;
  }
  if (header.length % 6 !== 0) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `SETTINGS of ${header.length} bytes`);
  let window = initialWindow;
  for (let at = 0; at < payload.length; at += 6) {
    const id = payload.readUInt16BE(at);
    const value = payload.readUInt32BE(at + 2);
    if (id === Setting.ENABLE_PUSH && value > 1) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
    if (id === Setting.MAX_FRAME_SIZE && (value < DEFAULT_MAX_FRAME_SIZE || value > 2 ** 24 - 1)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
    }
    if (id === Setting.INITIAL_WINDOW_SIZE) {
      if (value > MAX_WINDOW) throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
      window = value;
    }
    // HEADER_TABLE_SIZE: our encoder never indexes. MAX_FRAME_SIZE: we stay at 16,384.
  }
  return window;
}

// libavutil colour-space tags -> libswscale matrix constants, shared by the readers and the encoder.
#pragma once

namespace flashvsr::io {

/// SWS_CS_* for an AVColorSpace value (BT.709, BT.2020, FCC, SMPTE 240M; everything else, including
/// "unspecified", is BT.601). Callers that want FFmpeg's size-based default for unspecified streams decide
/// that before calling.
int sws_matrix(int av_colorspace);

}  // namespace flashvsr::io

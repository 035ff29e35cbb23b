// Image sequences as the CLI's input and output, one frame at a time (memory flat in the sequence's length):
// PNG and TIFF (8/16-bit), EXR (half/float) through OpenCV (io/image_io).
//
// Input: a folder (its images in natural order: frame2 before frame10; one extension; every image the same
// size) or a printf pattern "dir/frame_%05d.png" (the first number found in the folder, or a given start
// number; numbers must be consecutive). Output: a pattern "dir/%05d.png" or a folder "dir/" (->
// dir/%06d.png), frames numbered from 0, written into the sibling folder "dir.tmp-PID" and renamed to "dir"
// when complete
// ("dir.partial" when cancelled); destroyed unfinished, the writer leaves no folder.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "csrc/io/video_decoder.h"

namespace flashvsr::io {

/// ".png", ".tif", ".tiff", ".exr" (any case): the extensions of image sequences.
bool is_sequence_extension(const std::string& ext);
/// An input spec that names an image sequence: an existing folder, a path ending in '/', or a path whose
/// file name holds a %d-style pattern and has an image-sequence extension.
bool is_image_sequence_input(const std::string& spec);
/// An output spec that names an image sequence: ends with '/', is an existing folder, or its file name has
/// an image-sequence extension.
bool is_image_sequence_output(const std::string& spec);

/// A frame rate: "24000/1001", "25", "29.97", "ntsc", ... (libavutil's av_parse_video_rate) as num/den.
/// Throws InputError for anything else or a rate <= 0.
void parse_frame_rate(const std::string& text, int* num, int* den);

/// A file-name pattern with one integer conversion: %d, %Nd or %0Nd ("%%" is a literal '%').
class FramePattern {
  public:
    /// Throws InputError unless the file name of `pattern` holds exactly one such conversion (and the folder
    /// part none).
    explicit FramePattern(const std::string& pattern);
    std::string format(int64_t number) const;
    /// The number when `file_name` (no folder) is what format() gives for it, else -1.
    int64_t match(const std::string& file_name) const;
    const std::string& folder() const { return folder_; }  // "" for the current one
    const std::string& text() const { return text_; }

  private:
    std::string text_, folder_, prefix_, suffix_;
    int width_ = 0;
    bool zero_ = false;
};

class ImageSequenceReader {
  public:
    /// `spec`: a folder or a pattern; `start_number` < 0: the lowest number present (patterns only).
    /// The frames have pts 0, 1, 2, ... in the time base 1/fps. Throws InputError naming the folder or file:
    /// missing folder, no images, mixed extensions, a gap in a pattern's numbers, first image undecodable.
    /// Every image is checked against `max_pixels` (io/image_header.h) before it is decoded.
    ImageSequenceReader(const std::string& spec, int64_t start_number, int fps_num, int fps_den,
                        int64_t max_pixels = kDefaultMaxPixels);

    /// width/height/bits (8, 16; 32 for float) of the first image, time base, rate, frame count; colour
    /// tagged sRGB (BT.709 primaries, BT.709 matrix for a YUV encoder, limited range).
    const VideoStreamInfo& info() const { return info_; }
    int64_t frame_count() const { return count_; }
    int64_t start_number() const { return start_; }
    /// The path of frame i (0-based).
    std::string file(int64_t i) const;
    /// One-off notes for the user (alpha dropped) not taken yet.
    const std::vector<std::string>& notes() const { return notes_; }
    std::vector<std::string> take_notes() { return std::exchange(notes_, {}); }

    /// Up to `max_frames` next frames (decoded one by one); an empty batch at the end. Throws InputError
    /// naming the file that fails to decode or differs in size from the first.
    FrameBatch read(int64_t max_frames);
    int64_t frames_read() const { return next_; }

  private:
    at::Tensor load(int64_t i);
    std::string file_name_for(int64_t number) const;  // patterns only

    std::string spec_;
    std::vector<std::string> files_;     // a folder's images in natural order (empty for a pattern)
    std::vector<FramePattern> pattern_;  // zero or one
    int64_t start_ = 0, count_ = 0, next_ = 0, max_pixels_ = kDefaultMaxPixels;
    VideoStreamInfo info_;
    at::Tensor first_;  // the first frame, decoded by the constructor, handed out by the first read
    bool alpha_noted_ = false;
    std::vector<std::string> notes_;
};

class ImageSequenceWriter {
  public:
    /// `spec`: "dir/%05d.png" (also .tif, .tiff, .exr) or "dir/" / an existing folder (-> dir/%06d.png).
    /// `bits`: 8 or 16 for PNG/TIFF, 16 (half) or 32 (float) for EXR; 0 = default (PNG/TIFF: 16 when
    /// `source_bits` > 8, else 8; EXR: 16). The folder "dir" must not exist, or be empty, or (with
    /// `overwrite`) hold nothing but files of this pattern. Throws InputError for all of these, a pattern
    /// without its own folder, a missing parent folder.
    ImageSequenceWriter(const std::string& spec, int width, int height, int source_bits, int bits,
                        bool overwrite);
    ~ImageSequenceWriter();
    /// The folder an output spec writes ("dir" for "dir/%05d.png" and "dir/"); throws as the constructor
    /// does for a spec without a pattern.
    static std::string folder_of(const std::string& spec);
    ImageSequenceWriter(const ImageSequenceWriter&) = delete;
    ImageSequenceWriter& operator=(const ImageSequenceWriter&) = delete;

    /// rgb: float [n, height, width, 3] in [0, 1] (clamped); frames numbered 0, 1, 2, ... in order
    /// (timestamps are not used: a sequence has none).
    void write(const at::Tensor& rgb, const std::vector<int64_t>& pts = {},
               const std::vector<int64_t>& duration = {});
    /// Renames the folder to its final name; returns the final pattern ("dir/%06d.png").
    std::string finish();
    /// For a cancelled run: the folder goes to "dir.partial" (replacing an earlier partial folder of this
    /// pattern, else "dir.partial-PID"). Returns that folder's pattern.
    std::string finish_partial();

    int64_t frames_written() const { return frames_written_; }
    /// "png 16-bit", "exr half", ...
    const std::string& pix_fmt() const { return format_name_; }
    const std::string& folder() const { return dir_; }
    const std::string& pattern() const { return pattern_.text(); }
    const std::vector<std::string>& warnings() const { return warnings_; }

  private:
    std::string rename_to(const std::string& dest);

    FramePattern pattern_;
    std::string dir_, tmp_, format_name_;
    int width_ = 0, height_ = 0, bits_ = 8;
    bool overwrite_ = false, finished_ = false;
    int64_t frames_written_ = 0;
    std::vector<std::string> warnings_;
};

}  // namespace flashvsr::io

// The library's transcode pipeline (pipeline/transcode.h) without the CLI: N frames in -> N out with the
// report and progress snapshots, a given engine equals a loaded one, the one overwrite rule, cancel keeps a
// partial file or nothing, bad jobs name the field.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "csrc/io/video_decoder.h"
#include "csrc/pipeline/transcode.h"

namespace fs = std::filesystem;
using namespace flashvsr::testing_media;
using flashvsr::pipeline::TranscodeJob;
using flashvsr::pipeline::TranscodeProgress;
using flashvsr::pipeline::TranscodeReport;

namespace {

class Transcode : public CliTest {
  protected:
    /// 33 frames of 32x24 at 25 fps with an AAC tone (`name` in the test's folder).
    std::string clip(const std::string& name, int frames = 33) {
        const std::string p = path(name);
        ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -f lavfi -i sine=f=440 -frames:v " +
               std::to_string(frames) + " -t " + std::to_string(frames / 25.0) +
               " -c:v libx264 -pix_fmt yuv420p -c:a aac " + p);
        return p;
    }
    TranscodeJob job(const std::string& in, const std::string& out) const {
        TranscodeJob j;
        j.input = in;
        j.output = out;
        j.engine.model_dir = weights();
        j.engine.device = "cpu";
        j.upscale.scale = 2;
        j.encoder.private_options = {{"x264-params", "no-mbtree=1"}};  // a reproducible bitstream
        return j;
    }
};

at::Tensor all_frames(const std::string& path) {
    flashvsr::io::VideoDecoder dec(path);
    std::vector<at::Tensor> parts;
    while (true) {
        flashvsr::io::FrameBatch b = dec.read(16);
        if (b.rgb.size(0) == 0) {
            break;
        }
        parts.push_back(b.rgb);
    }
    return at::cat(parts);
}

std::string input_error(const TranscodeJob& j, const flashvsr::pipeline::TranscodeHooks& hooks = {}) {
    try {
        flashvsr::pipeline::transcode(j, hooks);
    } catch (const flashvsr::InputError& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST_F(Transcode, FramesReportProgressAndGivenEngine) {
    const std::string in = clip("in.mp4");
    std::vector<TranscodeProgress> snaps;
    int starts = 0;
    flashvsr::pipeline::TranscodeHooks hooks;
    hooks.on_start = [&](const TranscodeReport& r) {
        ++starts;
        EXPECT_EQ(r.status, "running");
        EXPECT_EQ(r.output_width, 64);
        EXPECT_EQ(r.output_height, 48);
        EXPECT_EQ(r.frames_estimate, 33);
    };
    std::mutex mu;  // on_progress runs on the encode thread, the final snapshot on the calling thread
    hooks.on_progress = [&](const TranscodeProgress& p) {
        const std::lock_guard<std::mutex> lock(mu);
        snaps.push_back(p);
    };
    const TranscodeReport r = flashvsr::pipeline::transcode(job(in, path("out.mp4")), hooks);
    EXPECT_EQ(starts, 1);
    EXPECT_EQ(r.status, "completed");
    EXPECT_EQ(r.output, path("out.mp4"));
    EXPECT_EQ(r.frames_in, 33);
    EXPECT_EQ(r.frames_out, 33);
    EXPECT_EQ(r.encoder, "libx264");
    EXPECT_EQ(r.pix_fmt, "yuv420p");
    EXPECT_GT(r.load_s, 0.0);
    EXPECT_FALSE(r.engine_options.empty());
    EXPECT_EQ(r.model.version, "v1.1");
    EXPECT_EQ(frame_times(path("out.mp4")), frame_times(in));
    ASSERT_GE(snaps.size(), 2u);
    for (size_t i = 1; i < snaps.size(); ++i) {
        EXPECT_GE(snaps[i].frames_done, snaps[i - 1].frames_done);
    }
    EXPECT_TRUE(snaps.back().final);
    EXPECT_EQ(snaps.back().frames_done, 33);
    EXPECT_EQ(snaps.back().frames_total, 33);
    EXPECT_EQ(snaps.back().eta_s, 0.0);
    EXPECT_FALSE(snaps.front().final);

    // An engine loaded by the caller gives the same frames; nothing is loaded.
    flashvsr::pipeline::TranscodeHooks given;
    flashvsr::EngineOptions eo;
    eo.model_dir = weights();
    eo.device = "cpu";
    given.engine = flashvsr::Engine::load(eo);
    TranscodeJob j = job(in, path("given.mp4"));
    j.engine.model_dir = path("not_used");
    const TranscodeReport g = flashvsr::pipeline::transcode(j, given);
    EXPECT_EQ(g.load_s, 0.0);
    EXPECT_EQ(g.engine_options, "");
    EXPECT_TRUE(at::equal(all_frames(path("given.mp4")), all_frames(path("out.mp4"))));
}

TEST_F(Transcode, OneOverwriteRule) {
    const std::string in = clip("in.mp4", 9);
    std::ofstream(path("exists.mp4")) << "keep";
    TranscodeJob j = job(in, path("exists.mp4"));
    EXPECT_NE(input_error(j).find("the output '" + path("exists.mp4") + "' exists (use --overwrite"),
              std::string::npos);
    EXPECT_EQ(fs::file_size(path("exists.mp4")), 4u);
    EXPECT_NE(input_error(job(in, in)).find("is the input file"), std::string::npos);
    j.overwrite = true;  // replaced, and only when complete
    EXPECT_EQ(input_error(j), "<no error>");
    EXPECT_EQ(frame_times(path("exists.mp4")).size(), 9u);
    EXPECT_EQ(list_dir(dir_).size(), 2u);  // in.mp4, exists.mp4: no temporary file left
}

TEST_F(Transcode, CancelKeepsPartialOrNothing) {
    const std::string in = clip("in.mp4", 45);
    for (const bool keep : {true, false}) {
        SCOPED_TRACE(keep ? "keep_partial" : "no partial");
        flashvsr::CancelToken cancel;
        flashvsr::pipeline::TranscodeHooks hooks;
        hooks.cancel = &cancel;
        hooks.on_progress = [&](const TranscodeProgress& p) {
            if (p.frames_done > 0) {
                cancel.cancel();
            }
        };
        TranscodeJob j = job(in, path("out.mp4"));
        j.keep_partial = keep;
        j.pipeline_depth = 0;
        const TranscodeReport r = flashvsr::pipeline::transcode(j, hooks);
        EXPECT_EQ(r.status, "cancelled");
        EXPECT_GT(r.frames_out, 0);
        EXPECT_LT(r.frames_out, 45);
        EXPECT_FALSE(fs::exists(path("out.mp4")));
        if (keep) {
            EXPECT_EQ(r.output, path("out.partial.mp4"));
            EXPECT_EQ(static_cast<int64_t>(frame_times(r.output).size()), r.frames_out);
            fs::remove(r.output);
        } else {
            EXPECT_EQ(r.output, "");
        }
        EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"in.mp4"});
    }
}

TEST_F(Transcode, BadJobsNameTheField) {
    const std::string in = clip("in.mp4", 5);
    TranscodeJob j = job(in, path("out.mp4"));
    j.batch = 0;
    EXPECT_NE(input_error(j).find("batch must be >= 1, got 0"), std::string::npos);
    j = job(in, path("out.mp4"));
    j.pipeline_depth = -1;
    EXPECT_NE(input_error(j).find("pipeline_depth must be >= 0"), std::string::npos);
    j = job(in, path("out.mp4"));
    j.bit_depth = 12;
    EXPECT_NE(input_error(j).find("bit_depth must be 8, 16 or 32, got 12"), std::string::npos);
    j = job(in, path("out.mp4"));
    j.upscale.scale = 5;
    EXPECT_NE(input_error(j).find("scale must be 2, 3 or 4"), std::string::npos);
    j = job(path("frames/%04d.png"), path("out.mp4"));
    j.decoder.start_s = 1;
    EXPECT_NE(input_error(j).find("start/end times apply to video input"), std::string::npos);
    j = job(in, path("out.mp4"));
    j.decoder.start_frame = 3;  // a segment's seek target comes from its chunks, never from the caller
    EXPECT_NE(input_error(j).find("decoder.start_frame is set by the segment (first_chunk), got 3"),
              std::string::npos);
    j = job(path("missing.mp4"), path("out.mp4"));
    EXPECT_NE(input_error(j).find("missing.mp4"), std::string::npos);
    EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"in.mp4"});
}

TEST_F(Transcode, OddOutputSizeGetsFourFourFour) {
    const std::string in = path("odd.mp4");
    ffmpeg("-f lavfi -i testsrc=size=33x25:rate=25 -frames:v 5 -c:v libx264 -pix_fmt yuv444p " + in);
    TranscodeJob j = job(in, path("out.mp4"));
    j.upscale.scale = 3;
    const TranscodeReport r = flashvsr::pipeline::transcode(j);
    EXPECT_EQ(r.pix_fmt, "yuv444p");
    EXPECT_EQ(r.frames_out, 5);
    flashvsr::io::VideoDecoder dec(path("out.mp4"));
    EXPECT_EQ(dec.info().width, 99);
    EXPECT_EQ(dec.info().height, 75);
}

// The option tables (flashvsr/options.h, pipeline/transcode_options.h): defaults are the structs', every
// listed choice and every value in a listed range passes validate() where the rule allows it and the edges
// outside fail, set/get round-trip by name with typed errors, names are unique across the three tables, and
// the CLI's --help lists every option it takes with the table's default and no flag the tables lack.
#include <flashvsr/flashvsr.h>
#include <flashvsr/options.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "csrc/pipeline/transcode_options.h"
#include "media_test_util.h"

using namespace flashvsr;

namespace {

std::string error_of(const UpscaleOptions& o) {
    try {
        o.validate();
    } catch (const InputError& e) {
        return e.what();
    }
    return "<valid>";
}

}  // namespace

TEST(Options, DefaultsAreTheStructsAndNamesAreUnique) {
    const EngineOptions e;
    const UpscaleOptions u;
    ASSERT_EQ(engine_option_specs().size(), 6u);
    ASSERT_EQ(upscale_option_specs().size(), 10u);
    for (const OptionSpec& s : engine_option_specs()) {
        EXPECT_EQ(s.group, "engine");
        EXPECT_EQ(s.default_value, get_option(e, s.name)) << s.name;
        EXPECT_EQ(find_option_spec(s.name), &s);
        EXPECT_FALSE(s.help.empty()) << s.name;
    }
    for (const OptionSpec& s : upscale_option_specs()) {
        EXPECT_EQ(s.group, "upscale");
        EXPECT_EQ(s.default_value, get_option(u, s.name)) << s.name;
        EXPECT_EQ(find_option_spec(s.name), &s);
        EXPECT_FALSE(s.help.empty()) << s.name;
    }
    EXPECT_EQ(find_option_spec("no_such_option"), nullptr);
    EXPECT_EQ(find_option_spec("park_tile_state")->cli_flag(), "--park-tile-state");
    EXPECT_EQ(find_option_spec("sparse_ratio")->default_text(), "2");
    EXPECT_EQ(find_option_spec("color_fix")->default_text(), "adain");
}

TEST(Options, ChoicesAndRangesAgreeWithValidate) {
    for (const OptionSpec& s : upscale_option_specs()) {
        SCOPED_TRACE(s.name);
        for (const std::string& c : s.choices) {
            UpscaleOptions o;
            set_option(o, s.name, c);
            EXPECT_EQ(error_of(o), "<valid>") << c;
        }
        if (s.type == OptionType::Choice) {
            UpscaleOptions o;
            set_option(o, s.name, std::string("nonsense"));
            EXPECT_NE(error_of(o).find(s.name), std::string::npos);
        }
        if (s.has_range) {
            UpscaleOptions lo, hi;
            if (s.type == OptionType::Int) {
                set_option(lo, s.name, static_cast<int64_t>(s.min));
                set_option(hi, s.name, s.max > 1e18 ? int64_t{1} << 62 : static_cast<int64_t>(s.max));
            } else {
                set_option(lo, s.name, s.min);
                set_option(hi, s.name, s.max);
            }
            EXPECT_EQ(error_of(lo), "<valid>");
            EXPECT_EQ(error_of(hi), "<valid>");
        }
    }
    UpscaleOptions o;
    set_option(o, "scale", int64_t{5});  // just outside the range
    EXPECT_NE(error_of(o).find("scale must be 2, 3 or 4"), std::string::npos);
    o = {};
    set_option(o, "local_range", int64_t{1});
    EXPECT_EQ(error_of(o), "<valid>");  // the UI's range starts at 3; validate() accepts any positive odd
}

TEST(Options, SetAndGetByNameWithTypedErrors) {
    UpscaleOptions u;
    set_option(u, "scale", int64_t{2});
    set_option(u, "sparse_ratio", int64_t{3});  // an int is a number
    set_option(u, "color_fix", std::string("wavelet"));
    EXPECT_EQ(u.scale, 2);
    EXPECT_EQ(u.sparse_ratio, 3.0);
    EXPECT_EQ(u.color_fix, "wavelet");
    EXPECT_EQ(std::get<int64_t>(get_option(u, "seed")), 0);
    EngineOptions e;
    set_option(e, "legacy_v10_cache_order", true);
    EXPECT_TRUE(e.legacy_v10_cache_order);
    const auto err = [](auto fn) -> std::string {
        try {
            fn();
        } catch (const InputError& x) {
            return x.what();
        }
        return "<no error>";
    };
    EXPECT_EQ(err([&] { set_option(u, "scale", std::string("2")); }), "option scale must be an int");
    EXPECT_EQ(err([&] { set_option(u, "color_fix", 1.5); }), "option color_fix must be a string");
    EXPECT_EQ(err([&] { set_option(u, "seed", int64_t{-1}); }), "seed must be >= 0, got -1");
    EXPECT_EQ(err([&] { set_option(u, "nope", int64_t{1}); }), "unknown option 'nope'");
    EXPECT_EQ(err([&] { set_option(e, "scale", int64_t{2}); }), "unknown option 'scale'");
}

TEST(Options, TranscodeTableDefaultsAreTheJobsAndNamesAreUniqueAcrossTables) {
    const pipeline::TranscodeJob job;
    const auto& specs = pipeline::transcode_option_specs();
    ASSERT_EQ(specs.size(), 19u);
    std::set<std::string> names;
    for (const auto* table : {&engine_option_specs(), &upscale_option_specs(), &specs}) {
        for (const OptionSpec& s : *table) {
            EXPECT_TRUE(names.insert(s.name).second) << s.name;  // upscale_file takes all three by name
            EXPECT_FALSE(s.help.empty()) << s.name;
        }
    }
    for (const OptionSpec& s : specs) {
        EXPECT_EQ(s.group, "transcode");
        EXPECT_EQ(s.default_value, pipeline::get_option(job, s.name)) << s.name;
        EXPECT_EQ(pipeline::find_transcode_option_spec(s.name), &s);
    }
    EXPECT_EQ(pipeline::find_transcode_option_spec("scale"), nullptr);
    const auto flag = [](const char* name) { return pipeline::find_transcode_option_spec(name)->cli_flag(); };
    EXPECT_EQ(flag("codec"), "-c:v");
    EXPECT_EQ(flag("encoder_options"), "-e");
    EXPECT_EQ(flag("copy_audio"), "--no-audio");
    EXPECT_EQ(flag("start_number"), "--start-number");
    EXPECT_EQ(pipeline::find_transcode_option_spec("fps")->default_text(), "25");
    EXPECT_EQ(pipeline::find_transcode_option_spec("end")->default_value, OptionValue(-1.0));
    EXPECT_EQ(*pipeline::find_transcode_option_spec("batch")->at_least, 1);
    EXPECT_EQ(pipeline::find_transcode_option_spec("keep_partial")->faces, unsigned{kPythonFace});
    EXPECT_EQ(pipeline::find_transcode_option_spec("bit_depth")->scope, OptionScope::SequenceOutput);
}

TEST(Options, TranscodeSetAndGetByName) {
    pipeline::TranscodeJob j;
    pipeline::set_option(j, "codec", std::string("ffv1"));
    pipeline::set_option(j, "crf", int64_t{0});
    pipeline::set_option(j, "encoder_options", KeyValues{{"preset", "slow"}, {"tune", "film"}});
    pipeline::set_option(j, "copy_audio", false);
    pipeline::set_option(j, "end", int64_t{2});  // an int is a number
    pipeline::set_option(j, "fps", std::string("24000/1001"));
    pipeline::set_option(j, "warmup_chunks", int64_t{3});
    EXPECT_EQ(j.encoder.codec, "ffv1");
    EXPECT_EQ(j.encoder.crf, 0);
    ASSERT_EQ(j.encoder.private_options.size(), 2u);
    EXPECT_EQ(j.encoder.private_options[1].second, "film");
    EXPECT_FALSE(j.encoder.copy_audio);
    EXPECT_EQ(j.decoder.end_s, 2.0);
    EXPECT_EQ(j.fps_num, 24000);
    EXPECT_EQ(j.fps_den, 1001);
    EXPECT_EQ(j.segment.warmup_chunks, 3);
    EXPECT_EQ(std::get<std::string>(pipeline::get_option(j, "fps")), "24000/1001");
    EXPECT_EQ(OptionSpec::text(pipeline::get_option(j, "encoder_options")), "preset=slow,tune=film");
    const auto err = [&j](const char* name, const OptionValue& v) -> std::string {
        try {
            pipeline::set_option(j, name, v);
        } catch (const InputError& x) {
            return x.what();
        }
        return "<no error>";
    };
    EXPECT_EQ(err("batch", std::string("4")), "option batch must be an int");
    EXPECT_EQ(err("encoder_options", std::string("a=b")), "option encoder_options must be KEY=VALUE pairs");
    EXPECT_EQ(err("scale", int64_t{2}), "unknown option 'scale'");
    EXPECT_NE(err("fps", std::string("abc")).find("abc"), std::string::npos);
    EXPECT_EQ(j.fps_num, 24000);  // a refused value leaves the job as it was
}

TEST(Options, CliHelpListsEveryOptionWithTheTableDefault) {
    const testing_media::CmdResult r =
        testing_media::run_cmd(std::string(FLASHVSR_CLI_PATH) + " upscale --help");
    ASSERT_EQ(r.code, 0);
    std::set<std::string> flags = {"-o", "--report", "--no-progress", "--progress-interval", "--verbose"};
    for (const auto* table :
         {&engine_option_specs(), &upscale_option_specs(), &pipeline::transcode_option_specs()}) {
        for (const OptionSpec& s : *table) {
            const size_t at = r.output.find("  " + s.cli_flag() + " ");
            if ((s.faces & kCliFace) == 0) {
                EXPECT_EQ(at, std::string::npos) << s.name;
                continue;
            }
            flags.insert(s.cli_flag());
            ASSERT_NE(at, std::string::npos) << s.cli_flag() << "\n" << r.output;
            const std::string line = r.output.substr(at, r.output.find('\n', at) - at);
            if (s.name == "model_dir" || s.name == "version" || s.name == "max_memory") {
                continue;  // the CLI's own words: a search order, the folder's version, sizes like 8G
            }
            EXPECT_NE(line.find(s.help), std::string::npos) << line;
            if (s.type == OptionType::Bool) {
                EXPECT_EQ(line.find("[default"), std::string::npos) << line;
                // a flag: present = not the default, so one defaulting to true reads "do not ..."
                EXPECT_EQ(line.find("do not " + s.help) != std::string::npos, std::get<bool>(s.default_value))
                    << line;
            } else if (s.type != OptionType::KeyValues) {
                const std::string def = s.cli_default.empty() ? s.default_text() : s.cli_default;
                EXPECT_NE(line.find("[default: " + def + "]"), std::string::npos) << line;
            }
        }
    }
    // and no flag the tables (or the run's own flags above) do not have
    std::istringstream lines(r.output.substr(r.output.find("Options:")));
    std::string line;
    int listed = 0;
    while (std::getline(lines, line)) {
        if (line.rfind("  -", 0) == 0) {
            ++listed;
            EXPECT_EQ(flags.count(line.substr(2, line.find(' ', 2) - 2)), 1u) << line;
        }
    }
    EXPECT_EQ(listed, static_cast<int>(flags.size()));
}

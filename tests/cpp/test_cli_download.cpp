// `flashvsr download` against local HTTP servers on 127.0.0.1 (never the internet): all five files
// byte-identical, a manifest written, resume from a .part file (Range honoured: only the rest is sent;
// Range ignored by `python3 -m http.server`: detected, started over), 404 -> one-line error, exit 1.
// Hashes from a Hugging Face-style file list (--api-url): SHA-256 of LFS files and git blob SHA-1 of the
// others verified and recorded in the manifest (a rerun keeps files their hash proves); a wrong hash -> error
// naming file, expected and got, exit 1, no file left; a resumed download hashes the kept prefix too; no file
// list -> size-only with a warning.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::testing_media;

namespace {

const char* kFiles[] = {"diffusion_pytorch_model_streaming_dmd.safetensors", "LQ_proj_in.ckpt",
                        "TCDecoder.ckpt", "Wan2.1_VAE.pth", "posi_prompt.pth"};

// Serves the current folder; honours "Range: bytes=N-" (206) and logs each request's range to ranges.log.
const char* kRangeServer = R"PY(
import http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        p = self.translate_path(self.path)
        if not os.path.isfile(p):
            self.send_error(404); return
        data = open(p, 'rb').read()
        start = 0
        r = self.headers.get('Range')
        if r and r.startswith('bytes='):
            start = int(r[6:].split('-')[0])
        with open('ranges.log', 'a') as f: f.write('%s %d\n' % (os.path.basename(p), start))
        self.send_response(206 if start else 200)
        if start: self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))
        self.send_header('Content-Length', str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
)PY";

class CliDownload : public ::testing::Test {
  protected:
    void SetUp() override {
        if (run_cmd("python3 -c pass").code != 0) {
            GTEST_FAIL() << "python3 is needed for the local HTTP server";
        }
        dir_ =
            fs::temp_directory_path() /
            ("flashvsr_dl_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
             "_" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "srv");
        std::mt19937 rng(7);
        for (const char* f : kFiles) {
            std::string b(300000 + 1000 * std::string(f).size(), '\0');
            for (char& c : b) {
                c = static_cast<char>(rng());
            }
            std::ofstream(dir_ / "srv" / f, std::ios::binary) << b;
        }
    }
    void TearDown() override {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        if (!dir_.empty()) {
            fs::remove_all(dir_);
        }
    }
    /// Starts a server in srv/ (the Range-aware one, or `python3 -m http.server`); returns its base URL.
    std::string serve(bool ranges) {
        std::ofstream(dir_ / "server.py") << kRangeServer;
        const std::string cmd =
            ranges ? "exec python3 " + (dir_ / "server.py").string()
                   : "exec python3 -u -c \"import http.server as h, socketserver; "
                     "s=h.ThreadingHTTPServer(('127.0.0.1',0),h.SimpleHTTPRequestHandler); "
                     "print(s.server_address[1], flush=True); s.serve_forever()\" 2>/dev/null";
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::close(fds[0]);
            ::close(fds[1]);
            if (::chdir((dir_ / "srv").c_str()) != 0) {
                ::_exit(127);
            }
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(fds[1]);
        std::string port;
        char c = 0;
        while (::read(fds[0], &c, 1) == 1 && c != '\n') {
            port += c;
        }
        ::close(fds[0]);
        return "http://127.0.0.1:" + port + "/";
    }
    /// Writes srv/api.json like https://huggingface.co/api/models/<repo>/tree/main: every file as LFS
    /// (lfs.oid = SHA-256) except the prompt (oid = git blob SHA-1). `bad` names one file whose hash is
    /// replaced by a wrong one.
    void write_api_json(const std::string& bad = "") {
        const std::string py = R"PY(
import hashlib, json, os, sys
srv, bad = sys.argv[1], sys.argv[2]
out = []
for name in sorted(os.listdir(srv)):
    if name.endswith('.json') or name.endswith('.log'): continue
    b = open(os.path.join(srv, name), 'rb').read()
    git = hashlib.sha1(b'blob %d\0' % len(b) + b).hexdigest()
    e = {'type': 'file', 'path': name, 'size': len(b), 'oid': git}
    if name != 'posi_prompt.pth':
        e['lfs'] = {'oid': hashlib.sha256(b).hexdigest(), 'size': len(b), 'pointerSize': 134}
    if name == bad:
        if 'lfs' in e: e['lfs']['oid'] = '0' * 64
        else: e['oid'] = '1' * 40
    out.append(e)
json.dump(out, open(os.path.join(srv, 'api.json'), 'w'))
)PY";
        std::ofstream(dir_ / "api.py") << py;
        const auto r = run_cmd("python3 " + (dir_ / "api.py").string() + " " + (dir_ / "srv").string() +
                               " '" + bad + "'");
        ASSERT_EQ(r.code, 0) << r.output;
    }
    std::string sha256sum(const fs::path& p) const {
        return run_cmd("sha256sum " + p.string()).output.substr(0, 64);
    }
    std::string download(const std::string& url, const std::string& to, const std::string& api) {
        return std::string(FLASHVSR_CLI_PATH) + " download --to " + (dir_ / to).string() + " --base-url " +
               url + " --api-url " + api;
    }
    std::string slurp(const fs::path& p) const {
        std::ifstream f(p, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    fs::path dir_;
    pid_t pid_ = -1;
};

}  // namespace

TEST_F(CliDownload, AllFilesIdenticalAndManifestWritten) {
    const std::string url = serve(true);
    const auto r = run_cmd(std::string(FLASHVSR_CLI_PATH) + " download --to " + (dir_ / "M").string() +
                           " --base-url " + url);
    ASSERT_EQ(r.code, 0) << r.output;
    for (const char* f : kFiles) {
        EXPECT_EQ(slurp(dir_ / "M" / f), slurp(dir_ / "srv" / f)) << f;
    }
    EXPECT_NE(slurp(dir_ / "M" / "flashvsr_manifest.json").find("\"v1.1\""), std::string::npos);
    for (const auto& n : list_dir(dir_ / "M")) {
        EXPECT_EQ(n.find(".part"), std::string::npos) << n;
    }
}

TEST_F(CliDownload, ResumesFromPartFile) {
    const std::string url = serve(true);
    fs::create_directories(dir_ / "M");
    const std::string full = slurp(dir_ / "srv" / kFiles[1]);
    std::ofstream(dir_ / "M" / (std::string(kFiles[1]) + ".part"), std::ios::binary)
        << full.substr(0, 100000);
    const auto r = run_cmd(std::string(FLASHVSR_CLI_PATH) + " download --to " + (dir_ / "M").string() +
                           " --base-url " + url);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(slurp(dir_ / "M" / kFiles[1]), full);
    EXPECT_NE(r.output.find("(resumed at 100000)"), std::string::npos) << r.output;
    // The server saw one ranged request for that file, from the 4 KiB overlap before the kept bytes.
    EXPECT_NE(slurp(dir_ / "srv" / "ranges.log").find(std::string(kFiles[1]) + " 95904\n"), std::string::npos)
        << slurp(dir_ / "srv" / "ranges.log");
}

TEST_F(CliDownload, ServerWithoutRangesStartsOverAndMissingFileFails) {
    const std::string url = serve(false);
    fs::create_directories(dir_ / "M");
    const std::string full = slurp(dir_ / "srv" / kFiles[2]);
    std::ofstream(dir_ / "M" / (std::string(kFiles[2]) + ".part"), std::ios::binary) << full.substr(0, 50000);
    auto r = run_cmd(std::string(FLASHVSR_CLI_PATH) + " download --to " + (dir_ / "M").string() +
                     " --base-url " + url);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(slurp(dir_ / "M" / kFiles[2]), full);
    EXPECT_EQ(r.output.find("resumed"), std::string::npos) << r.output;
    fs::remove(dir_ / "srv" / kFiles[4]);
    r = run_cmd(std::string(FLASHVSR_CLI_PATH) + " download --to " + (dir_ / "N").string() + " --base-url " +
                url);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("error: cannot download " + url + kFiles[4]), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "N" / kFiles[4]));
}

TEST_F(CliDownload, HashesFromFileListVerifiedAndRecorded) {
    const std::string url = serve(true);
    write_api_json();
    const auto r = run_cmd(download(url, "M", url + "api.json"));
    ASSERT_EQ(r.code, 0) << r.output;
    const size_t verified = count_of(r.output, "(verified)");
    EXPECT_EQ(verified, 5u) << r.output;  // four SHA-256 (LFS) + one git blob SHA-1
    std::ifstream mf(dir_ / "M" / "flashvsr_manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
    for (const char* f : kFiles) {
        const std::string want = sha256sum(dir_ / "srv" / f);
        ASSERT_EQ(want.size(), 64u);
        EXPECT_NE(manifest.find(want), std::string::npos) << f << "\n" << manifest;
        EXPECT_NE(r.output.find("sha256 " + want + " (verified)"), std::string::npos) << f << r.output;
    }
    // A second run keeps the files its hashes prove (nothing fetched again but the file list).
    std::ofstream(dir_ / "M" / (std::string(kFiles[2]) + ".part")) << "stale";
    const std::string before = slurp(dir_ / "srv" / "ranges.log");
    const auto again = run_cmd(download(url, "M", url + "api.json"));
    ASSERT_EQ(again.code, 0) << again.output;
    const size_t kept = count_of(again.output, "already here");
    EXPECT_EQ(kept, 5u) << again.output;
    EXPECT_FALSE(fs::exists(dir_ / "M" / (std::string(kFiles[2]) + ".part")));
    EXPECT_EQ(slurp(dir_ / "srv" / "ranges.log"), before + "api.json 0\n");
    std::ifstream mf2(dir_ / "M" / "flashvsr_manifest.json");
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(mf2)), std::istreambuf_iterator<char>()), manifest);
}

TEST_F(CliDownload, WrongHashFailsNamesFileAndLeavesNothing) {
    const std::string url = serve(true);
    struct Case {
        const char* file;
        std::string message;
    };
    const Case cases[] = {
        {kFiles[1], "failed the SHA-256 check: expected " + std::string(64, '0') + ", got "},
        {kFiles[4], "failed the git blob SHA-1 check: expected " + std::string(40, '1') + ", got "},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.file);
        write_api_json(c.file);
        const std::string to = std::string("M_") + c.file;
        const auto r = run_cmd(download(url, to, url + "api.json"));
        EXPECT_EQ(r.code, 1) << r.output;
        const std::string named = "error: '" + (dir_ / to / c.file).string() + "' " + c.message;
        EXPECT_NE(r.output.find(named), std::string::npos) << r.output;
        if (c.file == kFiles[1]) {
            EXPECT_NE(r.output.find(named + sha256sum(dir_ / "srv" / c.file)), std::string::npos) << r.output;
        }
        EXPECT_FALSE(fs::exists(dir_ / to / c.file));
        EXPECT_FALSE(fs::exists(dir_ / to / (std::string(c.file) + ".part")));
        EXPECT_FALSE(fs::exists(dir_ / to / "flashvsr_manifest.json"));
    }
}

TEST_F(CliDownload, ResumeHashesTheKeptPrefixToo) {
    const std::string url = serve(true);
    write_api_json();
    fs::create_directories(dir_ / "M");
    const std::string full = slurp(dir_ / "srv" / kFiles[1]);
    const fs::path part = dir_ / "M" / (std::string(kFiles[1]) + ".part");
    std::ofstream(part, std::ios::binary) << full.substr(0, 100000);
    auto r = run_cmd(download(url, "M", url + "api.json"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(
        r.output.find("(resumed at 100000), sha256 " + sha256sum(dir_ / "srv" / kFiles[1]) + " (verified)"),
        std::string::npos)
        << r.output;
    // A kept prefix with one wrong byte far before the re-read overlap: the resume is accepted (the overlap
    // matches) but the whole-file SHA-256 is not, so the file is rejected and deleted.
    fs::remove(dir_ / "M" / kFiles[1]);
    std::string bad = full.substr(0, 100000);
    bad[10] = static_cast<char>(bad[10] ^ 0x5a);
    std::ofstream(part, std::ios::binary) << bad;
    r = run_cmd(download(url, "M", url + "api.json"));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(std::string(kFiles[1]) + "' failed the SHA-256 check"), std::string::npos)
        << r.output;
    // Both runs resumed: two ranged requests from the 4 KiB overlap before the kept 100000 bytes.
    const std::string log = slurp(dir_ / "srv" / "ranges.log"), ranged = std::string(kFiles[1]) + " 95904\n";
    const size_t first = log.find(ranged);
    ASSERT_NE(first, std::string::npos) << log;
    EXPECT_NE(log.find(ranged, first + 1), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(part));
}

TEST_F(CliDownload, NoFileListMeansSizeOnlyWithWarning) {
    const std::string url = serve(true);
    const auto r = run_cmd(download(url, "M", url + "no_such_api.json"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("warning: cannot read the file list " + url + "no_such_api.json"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("sizes are checked against the server's only"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("(verified)"), std::string::npos) << r.output;
    for (const char* f : kFiles) {
        EXPECT_EQ(slurp(dir_ / "M" / f), slurp(dir_ / "srv" / f)) << f;
    }
    // The manifest still records each file's SHA-256.
    std::ifstream mf(dir_ / "M" / "flashvsr_manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
    EXPECT_NE(manifest.find(sha256sum(dir_ / "srv" / kFiles[0])), std::string::npos) << manifest;
}

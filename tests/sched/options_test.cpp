// SPDX-License-Identifier: Apache-2.0
// Options: WEFT_* variables and options fields are read as documented, and every bad value
// is rejected with a message that names the variable and what it allows.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "weft/errors.hpp"
#include "weft/options.hpp"

namespace {

// Sets the given variables for one test and removes every WEFT_* variable afterwards.
class Env : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* v : {"WEFT_PROCS", "WEFT_STACK_MIN", "WEFT_STACK_MAX", "WEFT_STACK", "WEFT_STACK_RESERVE",
                          "WEFT_GUARD", "WEFT_SCAN_MS", "WEFT_QUARANTINE", "WEFT_DEBUG"})
      ::unsetenv(v);
  }
  static std::string error_of(const char* name, const char* value) {
    ::setenv(name, value, 1);
    try {
      (void)weft::options::from_env();
    } catch (const weft::config_error& e) {
      ::unsetenv(name);
      return e.what();
    }
    ::unsetenv(name);
    return "";
  }
};

TEST_F(Env, DefaultsWhenNothingIsSet) {
  weft::options o = weft::options::from_env();
  EXPECT_EQ(o.procs, 0u);
  EXPECT_EQ(o.stack_min, 0u);
  EXPECT_EQ(o.stack_max, std::size_t{1} << 30);
  EXPECT_FALSE(o.stack_reserve.has_value());
  EXPECT_EQ(o.strategy, weft::stack_strategy::in_place);
  EXPECT_EQ(o.guard, weft::guard_mode::automatic);
  EXPECT_EQ(o.scan_interval.count(), 100);
  EXPECT_FALSE(o.quarantine.has_value());
  EXPECT_EQ(weft::default_stack_reserve(), std::size_t{8} << 20);
  EXPECT_EQ(weft::default_stack_reserve(weft::stack_strategy::copy), std::size_t{256} << 10);
}

TEST_F(Env, ReadsEveryVariable) {
  ::setenv("WEFT_PROCS", "3", 1);
  ::setenv("WEFT_STACK_MIN", "16K", 1);
  ::setenv("WEFT_STACK_MAX", "64m", 1);
  ::setenv("WEFT_STACK_RESERVE", "0", 1);
  ::setenv("WEFT_STACK", "segmented", 1);
  ::setenv("WEFT_GUARD", "mprotect", 1);
  ::setenv("WEFT_SCAN_MS", "0", 1);
  ::setenv("WEFT_QUARANTINE", "1", 1);
  ::setenv("WEFT_DEBUG", "yes", 1);
  weft::options o = weft::options::from_env();
  EXPECT_EQ(o.procs, 3u);
  EXPECT_EQ(o.stack_min, 16u * 1024);
  EXPECT_EQ(o.stack_max, 64u << 20);
  ASSERT_TRUE(o.stack_reserve.has_value());
  EXPECT_EQ(*o.stack_reserve, 0u);
  EXPECT_EQ(o.strategy, weft::stack_strategy::segmented);
  EXPECT_EQ(o.guard, weft::guard_mode::mprotect);
  EXPECT_EQ(o.scan_interval.count(), 0);
  EXPECT_EQ(o.quarantine, std::optional<bool>(true));
  EXPECT_TRUE(o.debug);
}

TEST_F(Env, BadValuesNameTheVariableAndWhatIsAllowed) {
  std::string e = error_of("WEFT_PROCS", "abc");
  EXPECT_NE(e.find("WEFT_PROCS='abc'"), std::string::npos) << e;
  EXPECT_NE(e.find("integer from 1 to 1024"), std::string::npos) << e;

  e = error_of("WEFT_STACK_MIN", "3000");
  EXPECT_NE(e.find("WEFT_STACK_MIN='3000'"), std::string::npos) << e;
  EXPECT_NE(e.find("power of two"), std::string::npos) << e;

  e = error_of("WEFT_STACK", "linked");
  EXPECT_NE(e.find("WEFT_STACK='linked'"), std::string::npos) << e;
  EXPECT_NE(e.find("in_place (the default: stacks never move), copy (Go's copying) or segmented"), std::string::npos) << e;

  e = error_of("WEFT_GUARD", "page");
  EXPECT_NE(e.find("automatic, madvise, mprotect or none"), std::string::npos) << e;

  EXPECT_NE(error_of("WEFT_STACK_RESERVE", "12345").find("WEFT_STACK_RESERVE"), std::string::npos);
  EXPECT_NE(error_of("WEFT_SCAN_MS", "-5").find("WEFT_SCAN_MS"), std::string::npos);
  EXPECT_NE(error_of("WEFT_QUARANTINE", "maybe").find("0 or 1"), std::string::npos);
  EXPECT_NE(error_of("WEFT_STACK_MAX", "99999999999999999999G").find("WEFT_STACK_MAX"), std::string::npos);
  EXPECT_NE(error_of("WEFT_PROCS", "2000").find("WEFT_PROCS"), std::string::npos);
}

TEST_F(Env, ValidateRejectsFieldsOutOfRange) {
  weft::options o;
  o.stack_min = 3000;
  EXPECT_THROW(o.validate(), weft::config_error);
  o = {};
  o.stack_max = 4096;  // below the default stack_min
  try {
    o.validate();
    ADD_FAILURE() << "stack_max below stack_min was accepted";
  } catch (const weft::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("at least stack_min"), std::string::npos) << e.what();
  }
  o = {};
  o.stack_reserve = 5000;
  EXPECT_THROW(o.validate(), weft::config_error);
  o = {};
  o.stack_reserve = 0;  // pure copying: the default strategy never copies, so it has no such mode
  try {
    o.validate();
    ADD_FAILURE() << "stack_reserve 0 with in_place was accepted";
  } catch (const weft::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("0 (pure copying) goes with WEFT_STACK=copy"), std::string::npos) << e.what();
  }
  o.strategy = weft::stack_strategy::copy;
  EXPECT_NO_THROW(o.validate());
}

// Issue 20: values that used to slip through.
TEST_F(Env, EnumsOutsideTheirValuesAreRejected) {
  weft::options o;
  o.strategy = static_cast<weft::stack_strategy>(7);
  try {
    o.validate();
    ADD_FAILURE() << "strategy 7 was accepted";
  } catch (const weft::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("options::strategy='7'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("stack_strategy::in_place"), std::string::npos) << e.what();
  }
  o = {};
  o.guard = static_cast<weft::guard_mode>(9);
  try {
    o.validate();
    ADD_FAILURE() << "guard 9 was accepted";
  } catch (const weft::config_error& e) {
    EXPECT_NE(std::string(e.what()).find("options::guard='9'"), std::string::npos) << e.what();
  }
}

TEST_F(Env, SizesTakeTheTSuffixTheMessagesOffer) {
  ::setenv("WEFT_STACK_MAX", "1T", 1);
  weft::options o = weft::options::from_env();
  EXPECT_EQ(o.stack_max, std::size_t{1} << 40);
  ::unsetenv("WEFT_STACK_MAX");
  std::string e = error_of("WEFT_STACK_MAX", "2T");
  EXPECT_NE(e.find("from 4K to 1T"), std::string::npos) << e;
  EXPECT_NE(e.find("K, M, G or T suffix"), std::string::npos) << e;
}

TEST_F(Env, AStackMinAboveStackMaxNamesTheVariableThatWasSet) {
  std::string e = error_of("WEFT_STACK_MIN", "2G");  // stack_max's default is 1G
  EXPECT_NE(e.find("WEFT_STACK_MIN) = 2G is larger than options::stack_max (WEFT_STACK_MAX) = 1G"), std::string::npos)
      << e;
}

TEST_F(Env, WeftDebugTakesABoolOrAListOfSettings) {
  ::setenv("WEFT_DEBUG", "1", 1);
  EXPECT_TRUE(weft::options::from_env().debug);
  ::setenv("WEFT_DEBUG", "schedtrace=1000,scheddetail=1", 1);
  weft::options o = weft::options::from_env();
  EXPECT_FALSE(o.debug);
  EXPECT_EQ(o.schedtrace.count(), 1000);
  EXPECT_TRUE(o.scheddetail);
  ::setenv("WEFT_DEBUG", "checks=1,schedtrace=5", 1);
  o = weft::options::from_env();
  EXPECT_TRUE(o.debug);
  EXPECT_EQ(o.schedtrace.count(), 5);
  ::unsetenv("WEFT_DEBUG");
  for (const char* bad : {"schedtrace", "schedtrace=abc", "schedtrace=99999999", "gctrace=1", "1,2", "scheddetail=2"}) {
    std::string e = error_of("WEFT_DEBUG", bad);
    EXPECT_NE(e.find("WEFT_DEBUG='" + std::string(bad) + "'"), std::string::npos) << e;
    EXPECT_NE(e.find("schedtrace=MS"), std::string::npos) << e;
  }
}

TEST_F(Env, AReserveNoStackCouldUseIsRejected) {
  std::string e = error_of("WEFT_STACK_RESERVE", "512G");
  EXPECT_NE(e.find("stack_reserve (WEFT_STACK_RESERVE) = 512G is larger than options::stack_max (WEFT_STACK_MAX) = 1G"),
            std::string::npos)
      << e;
  ::setenv("WEFT_STACK_MAX", "1T", 1);  // a reserve up to stack_max is the user's choice
  EXPECT_EQ(error_of("WEFT_STACK_RESERVE", "512G"), "");
}

}  // namespace

// The device class: parsing /proc/cpuinfo text, and a stable id on this machine.
#include "devices/measure/device_class.h"

#include <gtest/gtest.h>

#include <regex>

#include "devices/kernels/kernel_table.h"

namespace acs::measure {
namespace {

// Two sockets, two cores each, two hyper-threads per core.
const char kCpuinfo[] =
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n"
    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 0\ncore id\t\t: 1\n\n"
    "processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 1\ncore id\t\t: 0\n\n"
    "processor\t: 3\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 1\ncore id\t\t: 1\n\n"
    "processor\t: 4\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n"
    "processor\t: 5\nmodel name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\nphysical id\t: 0\ncore id\t\t: 1\n\n";

TEST(CpuinfoTest, ModelNameAndPhysicalCores) {
  EXPECT_EQ(CpuModelFromCpuinfo(kCpuinfo), "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz");
  EXPECT_EQ(PhysicalCoresFromCpuinfo(kCpuinfo), 4);
  EXPECT_EQ(CpuModelFromCpuinfo(""), "unknown");
  EXPECT_EQ(PhysicalCoresFromCpuinfo(""), 0);
  // Without topology fields (e.g. some ARM kernels) every processor counts.
  EXPECT_EQ(PhysicalCoresFromCpuinfo("processor : 0\nBogoMIPS : 50\n\nprocessor : 1\n"), 2);
}

TEST(SlugTest, LowerCaseWordsJoinedByDashes) {
  EXPECT_EQ(Slug("Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"), "intel-r-xeon-r-gold-6230-cpu-2-10ghz");
  EXPECT_EQ(Slug("  AMD EPYC  "), "amd-epyc");
  EXPECT_EQ(Slug("x86_64"), "x86-64");
  EXPECT_EQ(Slug(""), "");
}

TEST(DeviceClassTest, IdIsStableAndNamesIsaAndThreads) {
  const DeviceClass a = DetectDeviceClass({1, "test 1"});
  const DeviceClass b = DetectDeviceClass({1, "test 1"});
  EXPECT_EQ(a.Id(), b.Id());
  EXPECT_EQ(a.isa, kernels::IsaName(kernels::Kernels().isa));
  EXPECT_TRUE(std::regex_match(a.Id(), std::regex("[A-Za-z0-9_]+-(scalar|avx2|avx512)-[a-z0-9-]+-t1"))) << a.Id();
  const DeviceClass two = DetectDeviceClass({2, "test 1"});
  EXPECT_NE(two.Id(), a.Id());
  EXPECT_EQ(two.Id().substr(two.Id().size() - 3), "-t2");
  EXPECT_GT(a.physical_cores, 0);
  EXPECT_FALSE(a.cpu_model.empty());
  if (a.isa != "avx512") {
    EXPECT_FALSE(a.vnni);
  }
}

TEST(DeviceClassTest, RuntimeVersionDefaultsToTheProjectVersion) {
  EXPECT_EQ(DetectDeviceClass().runtime_version, "acs " + ProjectVersion());
  EXPECT_NE(ProjectVersion(), "unknown");
}

TEST(DeviceClassTest, JsonRoundTrip) {
  const DeviceClass a = DetectDeviceClass({2, "acs 0.1.0 / libtorch 1.13.0"});
  const nlohmann::json j = a.ToJson();
  EXPECT_EQ(j["id"].get<std::string>(), a.Id());
  StatusOr<DeviceClass> back = DeviceClass::FromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Id(), a.Id());
  EXPECT_EQ(back->runtime_version, a.runtime_version);
  EXPECT_EQ(back->vnni, a.vnni);

  nlohmann::json bad = j;
  bad["threads"] = "two";
  StatusOr<DeviceClass> error = DeviceClass::FromJson(bad);
  ASSERT_FALSE(error.ok());
  EXPECT_NE(error.status().message().find("'threads'"), std::string::npos) << error.status().message();
}

}  // namespace
}  // namespace acs::measure

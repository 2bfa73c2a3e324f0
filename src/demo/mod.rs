//! The demo data set (演示数据): units of Xuchang and Henan, 300+ instruments over the 15
//! national classes, platforms, services, achievements, articles and one account per role.
//! Loading is idempotent: records that already exist (by name) are left alone.

mod money;

use std::fmt;

use crate::{
    auth::{self, NewUser},
    clock::Clock,
    domain::CreditCode,
    error::Result,
    store::Db,
};

/// Demo accounts: username, display name, role, unit (index into `UNITS`) and email.
pub const DEMO_PASSWORD: &str = "Demo2026pass";
const ACCOUNTS: &[(&str, &str, &str, Option<usize>, &str)] = &[
    (
        "admin",
        "系统管理员",
        "system_admin",
        None,
        "admin@labshare.example",
    ),
    (
        "bureau",
        "市科技局 王科长",
        "platform_admin",
        None,
        "bureau@labshare.example",
    ),
    (
        "xcu_lab",
        "许昌学院 李老师",
        "unit_manager",
        Some(0),
        "xcu_lab@labshare.example",
    ),
    (
        "zzu_lab",
        "郑州大学 赵老师",
        "unit_manager",
        Some(4),
        "zzu_lab@labshare.example",
    ),
    (
        "expert_zhang",
        "张建华",
        "expert",
        Some(4),
        "expert_zhang@labshare.example",
    ),
    (
        "expert_liu",
        "刘晓燕",
        "expert",
        Some(6),
        "expert_liu@labshare.example",
    ),
    (
        "expert_chen",
        "陈国栋",
        "expert",
        None,
        "expert_chen@labshare.example",
    ),
    (
        "senyuan",
        "森源电气 孙经理",
        "user",
        Some(10),
        "senyuan@labshare.example",
    ),
];

struct DemoUnit {
    name: &'static str,
    kind: &'static str,
    nature: &'static str,
    prefix: &'static str,
    division: &'static str,
    city: &'static str,
    enterprise_type: &'static str,
    contact: &'static str,
    mobile: &'static str,
    address: &'static str,
    intro: &'static str,
    status: &'static str,
    departments: &'static [&'static str],
}

const UNITS: &[DemoUnit] = &[
    DemoUnit {
        name: "许昌学院",
        kind: "managing",
        nature: "高等院校",
        prefix: "12",
        division: "411000",
        city: "许昌市",
        enterprise_type: "other",
        contact: "李明",
        mobile: "13803740101",
        address: "许昌市魏都区八一路88号",
        intro: "河南省属本科院校，建有分析测试中心、化学与材料工程学院等多个校级公共实验平台。",
        status: "certified",
        departments: &[
            "分析测试中心",
            "化学与材料工程学院",
            "电气与机械工程学院",
            "食品与药学院",
            "城乡规划与园林学院",
        ],
    },
    DemoUnit {
        name: "许昌职业技术学院",
        kind: "managing",
        nature: "高等院校",
        prefix: "12",
        division: "411000",
        city: "许昌市",
        enterprise_type: "other",
        contact: "周华",
        mobile: "13803740102",
        address: "许昌市魏都区学院路",
        intro: "国家示范性高职院校，机电、汽车与检测实训基地面向社会开放。",
        status: "certified",
        departments: &["机电工程学院", "汽车工程学院", "实训中心"],
    },
    DemoUnit {
        name: "许昌市农业科学研究院",
        kind: "managing",
        nature: "科研院所",
        prefix: "12",
        division: "411000",
        city: "许昌市",
        enterprise_type: "other",
        contact: "王磊",
        mobile: "13803740103",
        address: "许昌市建安区许由路",
        intro: "从事烟草、小麦、花卉等作物育种与农产品质量检测研究。",
        status: "certified",
        departments: &["农产品质量检测室", "作物育种研究所", "土壤肥料研究所"],
    },
    DemoUnit {
        name: "许昌市产品质量检验检测中心",
        kind: "managing",
        nature: "检验检测机构",
        prefix: "12",
        division: "411000",
        city: "许昌市",
        enterprise_type: "other",
        contact: "刘洋",
        mobile: "13803740104",
        address: "许昌市东城区永昌大道",
        intro: "国家级电力装备与发制品质量检验检测平台，具备 CMA、CNAS 资质。",
        status: "certified",
        departments: &["理化检测室", "电气检测室", "计量室"],
    },
    DemoUnit {
        name: "郑州大学",
        kind: "managing",
        nature: "高等院校",
        prefix: "12",
        division: "410100",
        city: "郑州市",
        enterprise_type: "other",
        contact: "赵强",
        mobile: "13803710105",
        address: "郑州市高新区科学大道100号",
        intro: "国家“双一流”建设高校，分析测试中心拥有大型仪器设备 300 余台套。",
        status: "certified",
        departments: &[
            "分析测试中心",
            "化学学院",
            "材料科学与工程学院",
            "物理学院",
            "医学科学院",
        ],
    },
    DemoUnit {
        name: "河南农业大学",
        kind: "managing",
        nature: "高等院校",
        prefix: "12",
        division: "410100",
        city: "郑州市",
        enterprise_type: "other",
        contact: "张伟",
        mobile: "13803710106",
        address: "郑州市金水区农业路63号",
        intro: "省部共建小麦玉米作物学国家重点实验室所在单位。",
        status: "certified",
        departments: &[
            "生命科学学院",
            "农学院",
            "资源与环境学院",
            "食品科学技术学院",
        ],
    },
    DemoUnit {
        name: "河南省科学院",
        kind: "managing",
        nature: "科研院所",
        prefix: "12",
        division: "410100",
        city: "郑州市",
        enterprise_type: "other",
        contact: "陈静",
        mobile: "13803710107",
        address: "郑州市金水区崇实街",
        intro: "省属综合性自然科学研究机构，下设物理、化学、生物、地理等研究所。",
        status: "certified",
        departments: &["物理研究所", "化学研究所", "生物研究所", "同位素研究所"],
    },
    DemoUnit {
        name: "许昌智能电网装备研究院有限公司",
        kind: "managing",
        nature: "企业",
        prefix: "91",
        division: "411002",
        city: "许昌市",
        enterprise_type: "high_tech",
        contact: "孙涛",
        mobile: "13803740108",
        address: "许昌市经济技术开发区尚德路",
        intro: "从事智能变电、继电保护与直流输电装备研发，建有高压试验大厅和电磁兼容实验室。",
        status: "certified",
        departments: &["高压试验大厅", "电磁兼容实验室", "环境试验室"],
    },
    DemoUnit {
        name: "长葛市超硬材料技术研究中心",
        kind: "managing",
        nature: "科研院所",
        prefix: "12",
        division: "411082",
        city: "长葛市",
        enterprise_type: "other",
        contact: "马超",
        mobile: "13803740109",
        address: "长葛市人民路",
        intro: "面向人造金刚石与超硬材料产业的公共检测与中试平台。",
        status: "certified",
        departments: &["材料表征室", "中试车间"],
    },
    DemoUnit {
        name: "许昌市中心医院",
        kind: "managing",
        nature: "医疗机构",
        prefix: "12",
        division: "411000",
        city: "许昌市",
        enterprise_type: "other",
        contact: "杨帆",
        mobile: "13803740110",
        address: "许昌市魏都区华佗路",
        intro: "三级甲等综合医院，中心实验室开放分子诊断与细胞实验平台。",
        status: "certified",
        departments: &["中心实验室", "病理科", "检验科"],
    },
    DemoUnit {
        name: "许昌森源智能电气股份有限公司",
        kind: "user",
        nature: "企业",
        prefix: "91",
        division: "411082",
        city: "长葛市",
        enterprise_type: "high_tech",
        contact: "孙立",
        mobile: "13803740111",
        address: "长葛市魏武路",
        intro: "输配电设备制造企业，国家高新技术企业。",
        status: "certified",
        departments: &[],
    },
    DemoUnit {
        name: "许昌远航传动科技有限公司",
        kind: "user",
        nature: "企业",
        prefix: "91",
        division: "411002",
        city: "许昌市",
        enterprise_type: "tech_sme",
        contact: "郭峰",
        mobile: "13803740112",
        address: "许昌市魏都区新兴路",
        intro: "汽车传动轴研发制造，科技型中小企业。",
        status: "certified",
        departments: &[],
    },
    DemoUnit {
        name: "禹州钧瓷釉料创新团队",
        kind: "user",
        nature: "其他",
        prefix: "93",
        division: "411081",
        city: "禹州市",
        enterprise_type: "innovation_team",
        contact: "黄蕾",
        mobile: "13803740113",
        address: "禹州市神垕镇",
        intro: "钧瓷釉料配方与烧成工艺研究团队。",
        status: "certified",
        departments: &[],
    },
    DemoUnit {
        name: "许昌瑞美发制品研发有限公司",
        kind: "user",
        nature: "企业",
        prefix: "91",
        division: "411002",
        city: "许昌市",
        enterprise_type: "tech_sme",
        contact: "吴倩",
        mobile: "13803740114",
        address: "许昌市建安区",
        intro: "发制品材料研发企业。",
        status: "pending",
        departments: &[],
    },
];

/// An instrument template: name, class code, (model, manufacturer, country, value in 万元).
pub(crate) type Variant = (&'static str, &'static str, &'static str, u32);
pub(crate) const TEMPLATES: &[(&str, &str, &[Variant])] = &[
    (
        "场发射扫描电子显微镜",
        "010100",
        &[
            ("Sigma 300", "卡尔蔡司（ZEISS）", "德国", 380),
            ("SU8020", "日立（Hitachi）", "日本", 420),
            ("Apreo 2", "赛默飞世尔（Thermo Fisher）", "美国", 450),
        ],
    ),
    (
        "透射电子显微镜",
        "010100",
        &[
            ("JEM-2100F", "日本电子（JEOL）", "日本", 980),
            ("Talos F200X", "赛默飞世尔（Thermo Fisher）", "美国", 1500),
        ],
    ),
    (
        "台式扫描电子显微镜",
        "010100",
        &[
            ("Phenom XL", "飞纳（Phenom）", "荷兰", 120),
            ("TM4000Plus", "日立（Hitachi）", "日本", 110),
        ],
    ),
    (
        "气相色谱-质谱联用仪",
        "010200",
        &[
            ("7890B-5977B", "安捷伦（Agilent）", "美国", 95),
            ("GCMS-QP2020 NX", "岛津（Shimadzu）", "日本", 88),
            ("TSQ 9000", "赛默飞世尔（Thermo Fisher）", "美国", 160),
        ],
    ),
    (
        "液相色谱-串联质谱联用仪",
        "010200",
        &[
            ("6470B", "安捷伦（Agilent）", "美国", 260),
            ("QTRAP 5500", "爱博才思（SCIEX）", "美国", 320),
            ("LCMS-8060NX", "岛津（Shimadzu）", "日本", 280),
        ],
    ),
    (
        "电感耦合等离子体质谱仪",
        "010200",
        &[
            ("7900 ICP-MS", "安捷伦（Agilent）", "美国", 180),
            ("iCAP RQ", "赛默飞世尔（Thermo Fisher）", "美国", 170),
        ],
    ),
    (
        "X射线衍射仪",
        "010300",
        &[
            ("D8 ADVANCE", "布鲁克（Bruker）", "德国", 210),
            ("SmartLab 9kW", "理学（Rigaku）", "日本", 260),
            (
                "Empyrean",
                "马尔文帕纳科（Malvern Panalytical）",
                "荷兰",
                230,
            ),
        ],
    ),
    (
        "X射线荧光光谱仪",
        "010300",
        &[
            ("ZSX Primus IV", "理学（Rigaku）", "日本", 150),
            ("S8 TIGER", "布鲁克（Bruker）", "德国", 160),
        ],
    ),
    (
        "X射线光电子能谱仪",
        "010300",
        &[
            ("ESCALAB Xi+", "赛默飞世尔（Thermo Fisher）", "美国", 650),
            ("AXIS SUPRA+", "岛津-克雷托斯（Kratos）", "英国", 700),
        ],
    ),
    (
        "傅里叶变换红外光谱仪",
        "010400",
        &[
            ("Nicolet iS50", "赛默飞世尔（Thermo Fisher）", "美国", 60),
            ("VERTEX 70v", "布鲁克（Bruker）", "德国", 85),
        ],
    ),
    (
        "激光共聚焦拉曼光谱仪",
        "010400",
        &[
            ("LabRAM HR Evolution", "堀场（HORIBA）", "日本", 190),
            ("inVia Qontor", "雷尼绍（Renishaw）", "英国", 200),
        ],
    ),
    (
        "紫外可见近红外分光光度计",
        "010400",
        &[
            ("UV-3600i Plus", "岛津（Shimadzu）", "日本", 45),
            ("Lambda 1050+", "珀金埃尔默（PerkinElmer）", "美国", 70),
        ],
    ),
    (
        "电感耦合等离子体发射光谱仪",
        "010400",
        &[
            ("Avio 550 Max", "珀金埃尔默（PerkinElmer）", "美国", 80),
            ("5110 ICP-OES", "安捷伦（Agilent）", "美国", 75),
        ],
    ),
    (
        "原子吸收光谱仪",
        "010400",
        &[
            ("AA-7000", "岛津（Shimadzu）", "日本", 38),
            ("PinAAcle 900T", "珀金埃尔默（PerkinElmer）", "美国", 42),
        ],
    ),
    (
        "荧光光谱仪",
        "010400",
        &[
            (
                "FLS1000",
                "爱丁堡仪器（Edinburgh Instruments）",
                "英国",
                130,
            ),
            ("F-7100", "日立（Hitachi）", "日本", 40),
        ],
    ),
    (
        "气相色谱仪",
        "010500",
        &[
            ("8890", "安捷伦（Agilent）", "美国", 35),
            ("GC-2030", "岛津（Shimadzu）", "日本", 33),
            ("GC9790Plus", "浙江福立", "中国", 12),
        ],
    ),
    (
        "高效液相色谱仪",
        "010500",
        &[
            ("1260 Infinity II", "安捷伦（Agilent）", "美国", 40),
            ("ACQUITY UPLC H-Class", "沃特世（Waters）", "美国", 65),
            ("LC-20AD", "岛津（Shimadzu）", "日本", 32),
        ],
    ),
    (
        "离子色谱仪",
        "010500",
        &[
            ("Dionex ICS-6000", "赛默飞世尔（Thermo Fisher）", "美国", 55),
            ("930 Compact IC Flex", "瑞士万通（Metrohm）", "瑞士", 45),
        ],
    ),
    (
        "核磁共振波谱仪",
        "010600",
        &[
            ("AVANCE NEO 600MHz", "布鲁克（Bruker）", "德国", 900),
            ("AVANCE III HD 400MHz", "布鲁克（Bruker）", "德国", 480),
            ("JNM-ECZ500R", "日本电子（JEOL）", "日本", 560),
        ],
    ),
    (
        "电子顺磁共振波谱仪",
        "010600",
        &[("EMXplus", "布鲁克（Bruker）", "德国", 350)],
    ),
    (
        "电化学工作站",
        "010700",
        &[
            ("CHI760E", "上海辰华", "中国", 8),
            ("Reference 3000", "Gamry", "美国", 30),
            (
                "VersaSTAT 4",
                "普林斯顿（Princeton Applied Research）",
                "美国",
                25,
            ),
        ],
    ),
    (
        "激光扫描共聚焦显微镜",
        "010800",
        &[
            ("LSM 980", "卡尔蔡司（ZEISS）", "德国", 520),
            ("FV3000", "奥林巴斯（Olympus）", "日本", 380),
            ("TCS SP8", "徕卡（Leica）", "德国", 460),
        ],
    ),
    (
        "原子力显微镜",
        "010800",
        &[
            ("Dimension Icon", "布鲁克（Bruker）", "德国", 300),
            ("Cypher ES", "牛津仪器（Oxford Instruments）", "英国", 280),
        ],
    ),
    (
        "同步热分析仪",
        "010900",
        &[
            ("STA 449 F5", "耐驰（NETZSCH）", "德国", 65),
            ("SDT 650", "TA仪器（TA Instruments）", "美国", 60),
        ],
    ),
    (
        "差示扫描量热仪",
        "010900",
        &[
            ("DSC 25", "TA仪器（TA Instruments）", "美国", 40),
            ("DSC 3", "梅特勒-托利多（Mettler Toledo）", "瑞士", 38),
        ],
    ),
    (
        "流式细胞仪",
        "011000",
        &[
            ("BD FACSCelesta", "碧迪（BD）", "美国", 180),
            ("CytoFLEX S", "贝克曼库尔特（Beckman Coulter）", "美国", 150),
        ],
    ),
    (
        "实时荧光定量PCR仪",
        "011000",
        &[
            ("QuantStudio 5", "赛默飞世尔（Thermo Fisher）", "美国", 35),
            ("CFX96 Touch", "伯乐（Bio-Rad）", "美国", 32),
        ],
    ),
    (
        "全自动凯氏定氮仪",
        "011100",
        &[
            ("Kjeltec 8400", "福斯（FOSS）", "丹麦", 30),
            ("K9860", "济南海能", "中国", 9),
        ],
    ),
    (
        "元素分析仪",
        "011100",
        &[
            ("vario EL cube", "元素（Elementar）", "德国", 70),
            ("FlashSmart", "赛默飞世尔（Thermo Fisher）", "美国", 60),
        ],
    ),
    (
        "微波消解仪",
        "011200",
        &[
            ("MARS 6", "培安（CEM）", "美国", 28),
            ("ETHOS UP", "迈尔斯通（Milestone）", "意大利", 30),
        ],
    ),
    (
        "电子万能试验机",
        "020100",
        &[
            ("5982", "英斯特朗（Instron）", "美国", 120),
            ("CMT5105", "深圳新三思", "中国", 25),
            ("Z100", "兹韦克（ZwickRoell）", "德国", 110),
        ],
    ),
    (
        "疲劳试验机",
        "020100",
        &[
            ("8801", "英斯特朗（Instron）", "美国", 180),
            ("Landmark 370.10", "美特斯（MTS）", "美国", 200),
        ],
    ),
    (
        "激光粒度分析仪",
        "020500",
        &[
            (
                "Mastersizer 3000",
                "马尔文帕纳科（Malvern Panalytical）",
                "英国",
                60,
            ),
            ("LS 13 320", "贝克曼库尔特（Beckman Coulter）", "美国", 55),
        ],
    ),
    (
        "比表面积及孔径分析仪",
        "020500",
        &[
            ("ASAP 2460", "麦克默瑞提克（Micromeritics）", "美国", 70),
            ("Autosorb iQ", "安东帕康塔（Anton Paar）", "奥地利", 75),
        ],
    ),
    (
        "超声波探伤仪",
        "020600",
        &[("EPOCH 650", "奥林巴斯（Olympus）", "日本", 15)],
    ),
    (
        "三坐标测量机",
        "030122",
        &[
            ("CONTURA 7/10/6", "卡尔蔡司（ZEISS）", "德国", 160),
            ("Global S 7.10.7", "海克斯康（Hexagon）", "瑞典", 150),
        ],
    ),
    (
        "激光跟踪仪",
        "030100",
        &[("AT960", "徕卡（Leica）", "瑞士", 140)],
    ),
    (
        "高精度数字多用表校准系统",
        "030400",
        &[("5730A", "福禄克（Fluke）", "美国", 60)],
    ),
    (
        "矢量网络分析仪",
        "040200",
        &[
            ("ZNB20", "罗德与施瓦茨（R&S）", "德国", 110),
            ("E5080B", "是德科技（Keysight）", "美国", 120),
        ],
    ),
    (
        "频谱分析仪",
        "040200",
        &[
            ("N9030B PXA", "是德科技（Keysight）", "美国", 180),
            ("FSW26", "罗德与施瓦茨（R&S）", "德国", 190),
        ],
    ),
    (
        "数字存储示波器",
        "040100",
        &[
            ("MSO64B", "泰克（Tektronix）", "美国", 45),
            ("DSOS404A", "是德科技（Keysight）", "美国", 55),
        ],
    ),
    (
        "半导体参数分析仪",
        "040500",
        &[
            ("B1500A", "是德科技（Keysight）", "美国", 130),
            ("4200A-SCS", "吉时利（Keithley）", "美国", 110),
        ],
    ),
    (
        "电磁兼容测试系统",
        "040300",
        &[("ESW44 EMI", "罗德与施瓦茨（R&S）", "德国", 350)],
    ),
    ("多参数水质分析仪", "050100", &[("EXO2", "YSI", "美国", 25)]),
    (
        "声学多普勒流速剖面仪",
        "050100",
        &[("RiverPro 1200kHz", "Teledyne RDI", "美国", 40)],
    ),
    (
        "高密度电法仪",
        "060100",
        &[("WGMD-9", "重庆奔腾数控", "中国", 18)],
    ),
    (
        "探地雷达",
        "060200",
        &[("SIR-4000", "美国劳雷（GSSI）", "美国", 50)],
    ),
    ("自动气象站", "070100", &[("WS-600", "Lufft", "德国", 12)]),
    (
        "大气颗粒物监测仪",
        "070300",
        &[
            ("BAM-1020", "Met One", "美国", 30),
            ("5030i SHARP", "赛默飞世尔（Thermo Fisher）", "美国", 35),
        ],
    ),
    (
        "工业CT检测系统",
        "080300",
        &[
            ("phoenix v|tome|x m", "沃亨（Waygate）", "德国", 600),
            ("Y.CT Precision", "依科视朗（YXLON）", "德国", 550),
        ],
    ),
    (
        "便携式X射线探伤机",
        "080300",
        &[("XXG-2505", "丹东华日", "中国", 12)],
    ),
    (
        "局部放电检测系统",
        "080200",
        &[("MPD 800", "Omicron", "奥地利", 80)],
    ),
    (
        "飞秒激光器",
        "090100",
        &[
            ("Astrella", "相干（Coherent）", "美国", 420),
            ("Pharos", "光转换（Light Conversion）", "立陶宛", 380),
        ],
    ),
    (
        "光纤激光器",
        "090400",
        &[
            ("YLS-6000", "IPG光电（IPG Photonics）", "美国", 160),
            ("RFL-C3000", "锐科激光", "中国", 30),
        ],
    ),
    (
        "金属3D打印机",
        "100100",
        &[
            ("EOS M 290", "EOS", "德国", 520),
            ("BLT-S310", "西安铂力特", "中国", 300),
        ],
    ),
    (
        "磁控溅射镀膜系统",
        "100200",
        &[
            ("PVD 75", "Kurt J. Lesker", "美国", 180),
            ("JGP-450", "沈阳科仪", "中国", 60),
        ],
    ),
    (
        "高低温交变湿热试验箱",
        "100400",
        &[
            ("SH-662", "爱斯佩克（ESPEC）", "日本", 25),
            ("VCL 4010", "伟思富奇（Weiss Technik）", "德国", 30),
        ],
    ),
    (
        "高性能计算集群",
        "110100",
        &[
            ("曙光 TC4600E", "中科曙光", "中国", 800),
            ("浪潮 NF5280M6 集群", "浪潮", "中国", 500),
        ],
    ),
    (
        "光学望远镜",
        "120100",
        &[("CDK24", "PlaneWave", "美国", 120)],
    ),
    (
        "小动物活体成像系统",
        "130100",
        &[("IVIS Lumina III", "珀金埃尔默（PerkinElmer）", "美国", 200)],
    ),
    (
        "全自动生化分析仪",
        "130200",
        &[
            ("AU5800", "贝克曼库尔特（Beckman Coulter）", "美国", 260),
            ("cobas c 702", "罗氏（Roche）", "瑞士", 300),
        ],
    ),
    (
        "高内涵细胞成像分析系统",
        "130300",
        &[("Operetta CLS", "珀金埃尔默（PerkinElmer）", "美国", 350)],
    ),
    (
        "液体闪烁计数器",
        "140100",
        &[("Tri-Carb 4910TR", "珀金埃尔默（PerkinElmer）", "美国", 90)],
    ),
    (
        "高纯锗γ能谱仪",
        "140200",
        &[("GEM-C5060", "奥泰克（ORTEC）", "美国", 120)],
    ),
    (
        "超纯水系统",
        "990100",
        &[(
            "Milli-Q IQ 7000",
            "默克密理博（Merck Millipore）",
            "德国",
            12,
        )],
    ),
    (
        "超低温冰箱",
        "990100",
        &[("TSX60086V", "赛默飞世尔（Thermo Fisher）", "美国", 10)],
    ),
];

/// Unit index, title, field, maturity, transfer mode, price in fen (None: negotiable).
type DemoAchievement = (
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
);

/// Instruments per managing unit, so that the total exceeds 300.
const PER_UNIT: usize = 32;

/// What `load` did.
#[derive(Debug, Default)]
pub struct Report {
    pub units: usize,
    pub users: usize,
    pub instruments: usize,
    pub articles: usize,
    pub others: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "演示数据已加载：新增单位 {} 个、用户 {} 个、仪器 {} 台、资讯 {} 篇、平台/服务/成果 {} 项（已存在的记录保持不变）",
            self.units, self.users, self.instruments, self.articles, self.others
        )
    }
}

/// True when nothing has been created yet.
pub async fn is_empty(db: &Db) -> Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM units) + (SELECT COUNT(*) FROM users)")
            .fetch_one(&db.pool)
            .await?;
    Ok(n == 0)
}

/// A deterministic pseudo-random sequence, so every load builds the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn credit_code(u: &DemoUnit, index: usize) -> String {
    let org = format!("MA{:07}", 4_100_000 + index * 37);
    let first17 = format!("{}{}{}", u.prefix, u.division, &org[..9]);
    CreditCode::complete(&first17)
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

pub async fn load(db: &Db, clock: &Clock) -> Result<Report> {
    let now = clock.now_ts();
    let mut report = Report::default();
    let mut unit_ids = Vec::new();
    let mut rng = Lcg(20_261_126);
    for (index, u) in UNITS.iter().enumerate() {
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM units WHERE name = $1")
            .bind(u.name)
            .fetch_optional(&db.pool)
            .await?;
        if let Some(id) = existing {
            unit_ids.push(id);
            continue;
        }
        let joined = format!(
            "20{:02}-{:02}-{:02}",
            19 + index % 6,
            1 + index % 12,
            3 + index % 25
        );
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO units (name, kind, nature, credit_code, contact_name, contact_mobile, \
             contact_email, enterprise_type, certification_status, city, address, intro, joined_on, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id",
        )
        .bind(u.name)
        .bind(u.kind)
        .bind(u.nature)
        .bind(credit_code(u, index))
        .bind(u.contact)
        .bind(u.mobile)
        .bind(format!("contact{}@labshare.example", index + 1))
        .bind(u.enterprise_type)
        .bind(u.status)
        .bind(u.city)
        .bind(u.address)
        .bind(u.intro)
        .bind(&joined)
        .bind(now)
        .fetch_one(&db.pool)
        .await?;
        report.units += 1;
        unit_ids.push(id);
        if u.kind == "managing" {
            report.instruments += insert_instruments(db, id, u, index, &mut rng, now).await?;
        }
    }

    for (username, display, role, unit, email) in ACCOUNTS {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(*username)
            .fetch_optional(&db.pool)
            .await?;
        if exists.is_some() {
            continue;
        }
        let id = auth::create_user(
            db,
            NewUser {
                username: username.to_string(),
                password: DEMO_PASSWORD.into(),
                display_name: display.to_string(),
                email: Some(email.to_string()),
                phone: None,
            },
            &[role],
            now,
        )
        .await?;
        if let Some(ix) = unit {
            let member_role = if *role == "expert" {
                "member"
            } else {
                "manager"
            };
            let mut conn = db.pool.acquire().await?;
            crate::units::add_member(&mut conn, unit_ids[*ix], id, member_role, now).await?;
        }
        report.users += 1;
    }

    report.others += insert_resources(db, &unit_ids, now).await?;
    report.articles += insert_articles(db, now).await?;
    report.others += insert_experts_and_rules(db, &unit_ids, now).await?;
    report.others += money::load(db, now).await?;
    Ok(report)
}

/// Demo experts (专家库) and unit management rules (单位管理制度); each is skipped when a
/// record of the same name already exists, so loading twice changes nothing.
async fn insert_experts_and_rules(db: &Db, unit_ids: &[i64], now: i64) -> Result<usize> {
    let mut n = 0;
    let experts: &[(&str, &str, &str, &str, &str, &str)] = &[
        (
            "张建华",
            "郑州大学",
            "正高级",
            "新材料、金属材料检测",
            "2023-04-12",
            "certified",
        ),
        (
            "李慧敏",
            "河南农业大学",
            "正高级",
            "农产品检测、食品安全",
            "2023-06-20",
            "certified",
        ),
        (
            "王志强",
            "河南省科学院",
            "副高级",
            "分析化学、色谱质谱",
            "2024-03-08",
            "certified",
        ),
        (
            "刘晓燕",
            "河南省科学院",
            "副高级",
            "环境检测、水处理",
            "2024-09-15",
            "certified",
        ),
        (
            "陈国栋",
            "许昌智能电网装备研究院有限公司",
            "正高级",
            "电力装备、电磁兼容",
            "2025-01-10",
            "certified",
        ),
        (
            "赵立新",
            "许昌学院",
            "副高级",
            "生物医药、细胞分析",
            "2025-05-18",
            "draft",
        ),
        (
            "孙伟",
            "许昌市中心医院",
            "正高级",
            "医学影像设备",
            "2025-08-02",
            "pending",
        ),
    ];
    for (name, unit, title, fields, joined, cert) in experts {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM experts WHERE name = $1 AND unit_name = $2")
                .bind(*name)
                .bind(*unit)
                .fetch_optional(&db.pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        sqlx::query(
            "INSERT INTO experts (name, unit_name, title, fields, joined_on, status, \
             certification_status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, '在库', $6, $7, $7)",
        )
        .bind(*name)
        .bind(*unit)
        .bind(*title)
        .bind(*fields)
        .bind(*joined)
        .bind(*cert)
        .bind(now)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    // The demo expert accounts are these pool members (they review evaluations).
    for (username, name) in [
        ("expert_zhang", "张建华"),
        ("expert_liu", "刘晓燕"),
        ("expert_chen", "陈国栋"),
    ] {
        sqlx::query(
            "UPDATE experts SET user_id = (SELECT id FROM users WHERE username = $1) WHERE name = $2 AND user_id IS NULL",
        )
        .bind(username)
        .bind(name)
        .execute(&db.pool)
        .await?;
    }
    let rules: &[(usize, &str, &str, &str, &str)] = &[
        (
            0,
            "许昌学院大型仪器设备开放共享管理办法",
            "许院资〔2023〕15号",
            "2023-03-01",
            "2023-03-15",
        ),
        (
            0,
            "许昌学院分析测试中心收费管理规定",
            "许院资〔2023〕16号",
            "2023-03-01",
            "2023-04-01",
        ),
        (
            2,
            "许昌市农业科学研究院科研仪器共享服务细则",
            "许农科〔2024〕7号",
            "2024-05-10",
            "2024-06-01",
        ),
    ];
    for (ix, name, number, published, effective) in rules {
        let Some(unit_id) = unit_ids.get(*ix) else {
            continue;
        };
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM unit_rules WHERE unit_id = $1 AND name = $2")
                .bind(*unit_id)
                .bind(*name)
                .fetch_optional(&db.pool)
                .await?;
        if exists.is_some() {
            continue;
        }
        sqlx::query(
            "INSERT INTO unit_rules (unit_id, name, number, published_on, effective_on, \
             data_source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '单位填报', $6, $6)",
        )
        .bind(*unit_id)
        .bind(*name)
        .bind(*number)
        .bind(*published)
        .bind(*effective)
        .bind(now)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    Ok(n)
}

async fn insert_instruments(
    db: &Db,
    unit_id: i64,
    u: &DemoUnit,
    unit_index: usize,
    rng: &mut Lcg,
    now: i64,
) -> Result<usize> {
    let mut tx = db.pool.begin().await?;
    let mut n = 0;
    for k in 0..PER_UNIT {
        // Walk the templates so every class is covered, offset per unit.
        let (name, code, variants) = TEMPLATES[(unit_index * 7 + k * 3 + k / 11) % TEMPLATES.len()];
        let (model, maker, country, wan) = variants[rng.below(variants.len())];
        let value_fen = (wan as i64) * 1_000_000 + (rng.below(90) as i64) * 10_000;
        let department = u.departments[rng.below(u.departments.len())];
        let status = match k % 16 {
            14 => "pending",
            15 => "draft",
            _ => "approved",
        };
        let usage = ["正常", "正常", "正常", "正常", "偶有故障", "正常", "待修"][rng.below(7)];
        let sharing = if k % 9 == 4 {
            "内部共享"
        } else {
            "外部共享"
        };
        let open = sharing == "外部共享";
        let customs = country != "中国" && k % 5 == 0;
        let year = 2012 + rng.below(13);
        let joined = format!(
            "{}-{:02}-{:02}",
            2019 + rng.below(7),
            1 + rng.below(12),
            1 + rng.below(28)
        );
        let source = if country == "中国" && k % 7 == 0 {
            "研制"
        } else {
            "购置"
        };
        let funding = ["中央财政", "地方财政", "单位自有", "地方财政"][rng.below(4)];
        let kind = if k % 4 == 0 { "专用" } else { "通用" };
        let floor = 1 + rng.below(5);
        let room = 100 * floor + 1 + rng.below(30);
        sqlx::query(
            "INSERT INTO instruments (unit_id, name, model, manufacturer, country, category_code, department, \
             value_fen, open_to_public, city, customs_supervised, customs_declaration_no, customs_release_date, \
             usage_status, sharing_mode, source, funding, instrument_type, description, service_content, \
             location, fee_standard, review_status, joined_on, purchase_date, annual_running_hours, \
             annual_service_hours, service_count, created_at, updated_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
              $22, $23, $24, $25, $26, $27, $28, $29, $29)",
        )
        .bind(unit_id)
        .bind(name)
        .bind(model)
        .bind(maker)
        .bind(country)
        .bind(code)
        .bind(department)
        .bind(value_fen)
        .bind(open as i64)
        .bind(u.city)
        .bind(customs as i64)
        .bind(if customs { format!("4601{}{:010}", year, unit_id * 1000 + k as i64) } else { String::new() })
        .bind(if customs { Some(format!("{year}-06-18")) } else { None })
        .bind(usage)
        .bind(sharing)
        .bind(source)
        .bind(funding)
        .bind(kind)
        .bind(format!(
            "{maker} {model} {name}，{year} 年购置，安装于{}{department}，由专职技术人员管理，可提供{name}相关的测试与技术咨询。",
            u.name
        ))
        .bind(format!("{name}常规测试、方法开发、数据分析与结果解读；可承接企业委托检测与科研合作。"))
        .bind(format!("{}{}楼 {} 室", department, floor, room))
        .bind(format!(
            "校内 {} 元/小时，校外 {} 元/小时，具体以协商价格为准",
            (wan / 10).clamp(50, 800),
            (wan / 5).clamp(100, 1500)
        ))
        .bind(status)
        .bind(&joined)
        .bind(format!("{year}-0{}-15", 1 + rng.below(9)))
        .bind(800 + rng.below(1000) as i64)
        .bind(100 + rng.below(400) as i64)
        .bind(rng.below(120) as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

async fn insert_resources(db: &Db, unit_ids: &[i64], now: i64) -> Result<usize> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM platforms")
        .fetch_one(&db.pool)
        .await?;
    if existing > 0 {
        return Ok(0);
    }
    let mut n = 0;
    let platforms: &[(usize, &str, &str, &str)] = &[
        (0, "许昌学院分析测试中心", "公共检测平台", "校级平台"),
        (
            0,
            "河南省表界面科学重点实验室",
            "重点实验室",
            "省级重点实验室",
        ),
        (
            4,
            "郑州大学材料物理教育部重点实验室",
            "重点实验室",
            "部级重点实验室",
        ),
        (
            5,
            "省部共建小麦玉米作物学国家重点实验室",
            "重点实验室",
            "国家重点实验室",
        ),
        (
            6,
            "河南省科学院同位素研究所辐照平台",
            "工程技术研究中心",
            "省级工程技术研究中心",
        ),
        (7, "许昌智能电网装备检测平台", "检验检测平台", "市级平台"),
        (
            8,
            "长葛超硬材料公共检测与中试平台",
            "中试基地",
            "市级中试基地",
        ),
    ];
    for (ix, name, cat, ty) in platforms {
        sqlx::query(
            "INSERT INTO platforms (unit_id, name, category, platform_type, description, review_status, joined_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'approved', '2023-05-10', $6, $6)",
        )
        .bind(unit_ids[*ix])
        .bind(*name)
        .bind(*cat)
        .bind(*ty)
        .bind(format!("{name}面向社会开放共享，提供测试分析、技术咨询与人才培训服务。"))
        .bind(now)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    let services: &[(usize, &str, &str, i64, &str, i64)] = &[
        (
            0,
            "扫描电镜形貌观察与能谱分析",
            "材料表征",
            30_000,
            "块体或粉末，尺寸不超过 2 cm，需干燥导电或可喷金",
            5,
        ),
        (
            0,
            "X射线衍射物相分析",
            "材料表征",
            20_000,
            "粉末约 0.5 g 或平整块体",
            3,
        ),
        (
            3,
            "电线电缆导体电阻检测",
            "电气检测",
            15_000,
            "样品长度不少于 1.5 m",
            5,
        ),
        (
            3,
            "发制品材料成分检测",
            "理化检测",
            40_000,
            "样品不少于 10 g",
            7,
        ),
        (
            2,
            "农产品农药残留检测",
            "食品农产品检测",
            60_000,
            "样品不少于 500 g，冷藏送样",
            5,
        ),
        (
            2,
            "土壤养分全项分析",
            "环境检测",
            35_000,
            "风干土样不少于 200 g",
            7,
        ),
        (
            4,
            "核磁共振氢谱、碳谱测试",
            "结构分析",
            25_000,
            "样品 5–20 mg，注明溶剂",
            3,
        ),
        (
            4,
            "液质联用定性定量分析",
            "化学分析",
            80_000,
            "样品需可溶于甲醇或乙腈",
            5,
        ),
        (
            7,
            "电磁兼容预测试",
            "电气检测",
            300_000,
            "提供样机与说明书",
            10,
        ),
        (
            8,
            "金刚石单晶抗压强度测试",
            "材料力学",
            20_000,
            "粒度 40/50 以上，不少于 5 克拉",
            3,
        ),
        (
            9,
            "实时荧光定量 PCR 检测",
            "生物医学",
            25_000,
            "RNA/cDNA 样品，干冰运输",
            5,
        ),
    ];
    for (ix, name, cat, price, sample, days) in services {
        sqlx::query(
            "INSERT INTO services (unit_id, name, category, price_fen, sample_requirements, turnaround_days, description, review_status, published_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'approved', $8, $8, $8)",
        )
        .bind(unit_ids[*ix])
        .bind(*name)
        .bind(*cat)
        .bind(*price)
        .bind(*sample)
        .bind(*days)
        .bind(format!("{name}：按国家或行业标准方法检测，出具检测报告。"))
        .bind(now)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    let achievements: &[DemoAchievement] = &[
        (
            0,
            "高导热石墨烯复合散热膜制备技术",
            "新材料",
            "中试阶段",
            "许可",
            Some(50_000_000),
        ),
        (
            4,
            "低成本钙钛矿太阳能电池封装工艺",
            "新能源",
            "小试阶段",
            "合作开发",
            None,
        ),
        (
            5,
            "抗赤霉病小麦新品种“豫农 916”",
            "现代农业",
            "已应用",
            "转让",
            Some(120_000_000),
        ),
        (
            6,
            "食品辐照灭菌剂量快速检测方法",
            "食品安全",
            "已应用",
            "许可",
            Some(8_000_000),
        ),
        (
            7,
            "特高压直流换流阀状态监测系统",
            "智能电网",
            "产业化",
            "作价入股",
            None,
        ),
        (
            8,
            "聚晶金刚石复合片高温高压烧结工艺",
            "超硬材料",
            "中试阶段",
            "合作开发",
            None,
        ),
    ];
    for (ix, title, field, maturity, mode, price) in achievements {
        sqlx::query(
            "INSERT INTO achievements (unit_id, title, field, maturity, transfer_mode, price_fen, holder, contact_name, contact_phone, description, review_status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT name FROM units WHERE id = $1), '成果转化办公室', '0374-2968000', $7, 'approved', $8, $8)",
        )
        .bind(unit_ids[*ix])
        .bind(*title)
        .bind(*field)
        .bind(*maturity)
        .bind(*mode)
        .bind(*price)
        .bind(format!("{title}，拥有自主知识产权，可面向企业开展技术转移与成果转化。"))
        .bind(now)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    Ok(n)
}

async fn insert_articles(db: &Db, now: i64) -> Result<usize> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
        .fetch_one(&db.pool)
        .await?;
    if existing > 0 {
        return Ok(0);
    }
    let day = 86_400;
    let articles: &[(&str, &str, &str, bool, i64)] = &[
        (
            "notice",
            "关于开展 2026 年度科技创新券申领工作的通知",
            "各有关单位：为降低企业研发成本，现启动 2026 年度科技创新券申领工作。国家高新技术企业年度额度 5 万元，科技型中小企业和创新团队 3 万元。",
            true,
            3,
        ),
        (
            "notice",
            "关于组织开展 2026 年度大型科研仪器开放共享绩效评价的通知",
            "请各管理单位于 12 月 20 日前完成绩效评价申报，评价结果将作为后补助的依据。",
            false,
            10,
        ),
        (
            "notice",
            "许昌市科研设施与仪器共享服务平台试运行公告",
            "平台现已上线试运行，欢迎各高校、科研院所和企业登记入网、预约使用。",
            false,
            40,
        ),
        (
            "news",
            "我市新增 32 台套大型科研仪器纳入共享服务平台",
            "近日，市科技局组织专家完成了第三批仪器入网审核，新增扫描电镜、核磁共振波谱仪等大型仪器 32 台套。",
            false,
            5,
        ),
        (
            "news",
            "许昌学院分析测试中心为 20 余家企业提供检测服务",
            "今年以来，许昌学院分析测试中心依托平台累计为企业提供检测服务 600 余机时。",
            false,
            15,
        ),
        (
            "news",
            "市科技局赴长葛调研超硬材料公共检测平台建设",
            "调研组一行实地察看了超硬材料中试车间和材料表征室，听取平台开放共享情况汇报。",
            false,
            28,
        ),
        (
            "policy",
            "《许昌市科技创新券管理办法》政策解读",
            "创新券可用于支付使用平台内科研仪器和检测服务费用的 40%，由服务提供方凭券申请兑付。",
            false,
            20,
        ),
        (
            "policy",
            "国务院关于国家重大科研基础设施和大型科研仪器向社会开放的意见（解读）",
            "明确了开放共享的基本原则、管理体系和激励约束机制，提出将开放共享情况纳入考核评价。",
            false,
            60,
        ),
        (
            "policy",
            "河南省科研设施与仪器开放共享双向补贴政策要点",
            "对提供共享服务的管理单位按服务收入给予补贴，对使用仪器的用户单位通过创新券给予支持。",
            false,
            90,
        ),
    ];
    let mut n = 0;
    for (kind, title, text, pinned, days_ago) in articles {
        let body = crate::content::sanitize_html(&format!(
            "<p>{text}</p><p>联系电话：0374-2968000（市科技局资源共享科）。</p>"
        ));
        sqlx::query(
            "INSERT INTO articles (kind, title, summary, body_html, source, status, pinned, published_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, '许昌市科学技术局', 'published', $5, $6, $6, $6)",
        )
        .bind(*kind)
        .bind(*title)
        .bind(text.chars().take(60).collect::<String>())
        .bind(body)
        .bind(*pinned as i64)
        .bind(now - days_ago * day)
        .execute(&db.pool)
        .await?;
        n += 1;
    }
    Ok(n)
}

/// Put the demo's pending records into review on the engine, so the platform admin's 待办
/// holds real tasks: pending instruments (applicant: their unit's manager) and pending units
/// (applicant: the system admin, as data docking would). Records already in a running
/// flow are left alone; returns how many flows were started.
pub async fn start_pending_reviews(state: &crate::web::AppState) -> Result<usize> {
    let db = &state.db;
    let mut started = 0;
    let pending: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT 'instrument', i.id, COALESCE((SELECT MIN(m.user_id) FROM unit_members m WHERE m.unit_id = i.unit_id AND m.role = 'manager'), \
         (SELECT MIN(u.id) FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id WHERE r.key = 'system_admin'), 0) \
         FROM instruments i WHERE i.review_status = 'pending' \
         UNION ALL SELECT 'unit', n.id, COALESCE((SELECT MIN(u.id) FROM users u JOIN user_roles ur ON ur.user_id = u.id \
         JOIN roles r ON r.id = ur.role_id WHERE r.key = 'system_admin'), 0) FROM units n WHERE n.certification_status = 'pending'",
    )
    .fetch_all(&db.pool)
    .await?;
    for (kind, id, applicant) in pending {
        if applicant == 0 {
            continue;
        }
        let running: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM workflow_instances WHERE subject_type = $1 AND subject_id = $2 AND status = 'running'",
        )
        .bind(&kind)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
        if running.is_some() {
            continue;
        }
        let key = if kind == "instrument" {
            "instrument_onboarding"
        } else {
            "unit_certification"
        };
        crate::workflow::start(
            state,
            key,
            &kind,
            id,
            applicant,
            serde_json::json!({"source": "demo"}),
        )
        .await?;
        started += 1;
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_credit_codes_are_valid_and_unique() {
        let codes: std::collections::HashSet<_> = UNITS
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let c = credit_code(u, i);
                assert!(CreditCode::parse(&c).is_ok(), "{c}");
                c
            })
            .collect();
        assert_eq!(codes.len(), UNITS.len());
    }

    #[test]
    fn the_demo_covers_all_fifteen_classes_and_300_instruments() {
        let managing = UNITS.iter().filter(|u| u.kind == "managing").count();
        assert!(managing * PER_UNIT >= 300);
        let majors: std::collections::HashSet<_> = TEMPLATES
            .iter()
            .map(|(_, c, _)| crate::catalog::major_code(c))
            .collect();
        assert_eq!(majors.len(), 15);
        for (_, code, _) in TEMPLATES {
            assert!(crate::catalog::is_known_code(code), "{code}");
        }
    }
}
